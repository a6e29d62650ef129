"""Change events and small helpers for the notifier tests (a uniquely named
module, not conftest, so importing it cannot pick up another directory's conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from profilesync.v1 import notifier_pb2


def make_event(n: int, *, run_id: str = "run-1") -> notifier_pb2.ChangeEvent:
    """Event number `n`: ids sort in publishing order."""
    return notifier_pb2.ChangeEvent(
        event_id=f"event-{n:05d}",
        run_id=run_id,
        user_id=f"user-{n}",
        kind=notifier_pb2.UPDATED,
        changed_fields=["skills"],
        origin=notifier_pb2.SHAREPOINT,
    )


def event_ids(start: int, stop: int) -> list[str]:
    return [f"event-{n:05d}" for n in range(start, stop)]


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 60.0, what: str = "condition"
) -> Any:
    """Polls `check` until it returns something truthy; fails after `timeout` seconds.

    The timeouts are generous on purpose: the machine is shared and slow at times,
    and the checks only wait for the outcome, never for a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
