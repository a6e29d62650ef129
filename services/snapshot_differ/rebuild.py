"""A baseline Redis lost, rebuilt from the newest committed snapshot.

    await rebuild_baseline(base, reader, run_id)   # before the run compares

Without it every user would read as new and the LOB app would get a CREATED
event for each. The rebuilt generation takes the name of the run that
committed the snapshot, so the event ids of a rerun stay those of the run
that died (changes.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

from services.snapshot_differ.baseline import Baseline
from services.snapshot_differ.snapshot import SnapshotReader

__all__ = ["rebuild_baseline"]

log = logging.getLogger(__name__)

# Profiles written to Redis per round trip.
REBUILD_CHUNK = 5000


async def rebuild_baseline(base: Baseline, reader: SnapshotReader, run_id: str) -> None:
    """Redis lost the baseline: rebuild it from the newest committed snapshot."""
    manifest = await asyncio.to_thread(reader.latest_manifest_key)
    if manifest is None:
        log.info("no baseline and no committed snapshot: every user is new")
        return
    started = time.perf_counter()
    # Named as the lost generation was, after the run that committed the
    # snapshot: event ids derive from it (changes.py), so a rerun of a run
    # that died before Redis lost the baseline repeats that run's ids.
    document = await asyncio.to_thread(reader.manifest, manifest)
    await base.start_over()
    async for batch in reader.batches(manifest, REBUILD_CHUNK):
        await base.put_committed(
            (str(profile["id"]), profile_digest, profile) for profile, profile_digest in batch
        )
    # Only a snapshot read to its end (every checksum verified) is committed.
    await base.mark_committed(str(document.get("runId") or f"rebuilt-{run_id}"))
    log.warning(
        "baseline rebuilt from snapshot %s",
        manifest,
        extra={"users": await base.size(), "seconds": round(time.perf_counter() - started, 3)},
    )
