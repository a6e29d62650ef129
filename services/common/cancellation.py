"""Stopping a loop that runs until its task is cancelled, even when a library
loses the cancellation.

    while True:
        await redis.get(key)
        stop_if_cancelled()

redis-py's asyncio client can swallow a cancellation that lands while a
command is under way (redis/redis-py#2028, #2551): the command returns or
raises RedisError and the task runs on. A loop that is only ever stopped by
`task.cancel()` would then never end, and whoever awaits it after cancelling
(a run releasing its lock, a process shutting down) would wait forever. The
request is still counted by the task (`Task.cancelling()`), so a loop that
checks it after each such call stops on its next turn.
"""

from __future__ import annotations

import asyncio

__all__ = ["stop_if_cancelled"]


def stop_if_cancelled() -> None:
    """Raises CancelledError if this task was asked to stop, lost or not."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
