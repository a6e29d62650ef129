"""A sweeper asked to stop stops, even when a run loses the cancellation.

Awaiting another task, a cancelled task learns of its cancellation only
through that task; a library that turns it into an ordinary result would
otherwise leave the sweeper running its next run after SIGTERM.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from profilesync.v1 import differ_pb2
from services.snapshot_differ.sweeper import sweep


class _RunnerThatSwallowsCancellation:
    """Each run waits on an inner task that ends normally when cancelled."""

    def __init__(self) -> None:
        self.settings = SimpleNamespace(lock_ttl_seconds=3)
        self.runs_started = 0

    async def run_to_end(self, *_: Any, **__: Any) -> differ_pb2.SyncRun:
        self.runs_started += 1
        if self.runs_started > 1:
            raise AssertionError("the sweep started another run after it was cancelled")

        async def read_everything() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                return  # swallowed, as a careless library might

        await asyncio.create_task(read_everything())
        return differ_pb2.SyncRun(run_id=f"run-{self.runs_started}", state=differ_pb2.FAILED)


async def test_a_cancelled_sweep_ends_even_if_its_run_swallowed_the_cancellation() -> None:
    runner = _RunnerThatSwallowsCancellation()
    task = asyncio.create_task(
        sweep(runner, shard_index=0, shard_count=1, interval_seconds=0)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert runner.runs_started == 1
