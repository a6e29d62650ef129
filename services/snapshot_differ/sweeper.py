"""The paced sweeper: every user of a shard read at least once per interval.

    await sweep(runner, shard_index=0, shard_count=1, interval_seconds=900)

One paced run after another: each spreads its reads evenly over the interval
(less a margin for the commit; run.spread_for), and the next starts one
interval after the previous one started, or at once if that one overran. So
a user is read about once per interval, and an edit reaches the LOB app
within one interval plus the time to publish it, while the tenant's Graph
budget sees a steady trickle (users / interval) instead of bursts at the
quota. Each run is an ordinary run: its lock, snapshot, deletion guard and
crash safety are those of any run.

The shard lock elects the sweeper: when a run of the shard is already going
(another sweeper replica, or an on-demand StartSync), this one waits and asks
again, so at most one sweeper per shard is active.
"""

from __future__ import annotations

import asyncio
import logging

from profilesync.v1 import differ_pb2
from services.common.cancellation import stop_if_cancelled
from services.common.errors import AlreadyRunning
from services.snapshot_differ.run import SyncRunner

__all__ = ["sweep"]

log = logging.getLogger(__name__)


async def sweep(
    runner: SyncRunner,
    *,
    shard_index: int,
    shard_count: int,
    interval_seconds: int,
    runs: int | None = None,
) -> list[differ_pb2.SyncRun]:
    """Sweeps until cancelled (or `runs` runs have ended); returns the runs."""
    loop = asyncio.get_running_loop()
    done: list[differ_pb2.SyncRun] = []
    wait_for_lock = max(1.0, runner.settings.lock_ttl_seconds / 3)
    while runs is None or len(done) < runs:
        started = loop.time()
        try:
            run = await runner.run_to_end(
                shard_index, shard_count, interval_seconds=interval_seconds
            )
        except AlreadyRunning as error:
            log.info("sweep waits: %s", error)
            await asyncio.sleep(wait_for_lock)
            continue
        finally:
            stop_if_cancelled()
        done.append(run)
        log.info(
            "sweep run %s ended %s",
            run.run_id,
            differ_pb2.RunState.Name(run.state),
            extra={"runId": run.run_id, "shortestIntervalSeconds": run.shortest_interval_seconds},
        )
        if runs is not None and len(done) >= runs:
            break
        await asyncio.sleep(max(0.0, started + interval_seconds - loop.time()))
    return done
