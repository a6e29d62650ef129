"""One blocking reader per process, shared by every call that waits for new events.

    tail = LogTail(redis, "profilesync:changes", decode=_decode)
    entries = tail.after(cursor, 100)        # from memory, or None: read Redis yourself
    await tail.wait_beyond(cursor, 5.0, stop)  # True once the log has an entry after cursor
    await tail.aclose()

Without it each waiting stream or long-poll held a Redis connection in its own
XREAD BLOCK, so open streams were bounded by the connection pool and the
pool's exhaustion stopped every other call. Here a single task blocks in
Redis (one connection, however many wait), keeps the newest entries it read
in memory, and wakes the waiters; a waiter at the head of the log takes its
events from that memory without touching Redis. Waiters further behind read
Redis with short, non-blocking reads.

The task runs only while someone waits: it stops after a block that ended
with nobody waiting, and the next waiter starts it again.

Entries in memory are contiguous: each one's `prev` is the one before it.
If the log was trimmed past what the task had read, or emptied, between two
of its reads, the memory starts again from the entry just read, so an answer
from memory never hides a gap (the caller still checks the first entry's
`prev` against its cursor).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import redis.asyncio as aioredis

from services.common.cancellation import stop_if_cancelled
from services.common.redis_client import unavailable_when_redis_is
from services.lob_notifier.cursors import OLDEST, cursor_key

__all__ = ["LogTail", "Stop", "TailEntry"]

log = logging.getLogger(__name__)

# Longest XREAD BLOCK of the shared reader: short enough that it notices
# nobody waits any more soon after, long enough to cost Redis nearly nothing.
BLOCK_MS = 2_000
# Entries read per XREAD, and kept in memory for waiters at the head (between
# KEEP_ENTRIES and twice that).
READ_COUNT = 1_000
KEEP_ENTRIES = 4_000
# After a failed read (Redis restarting), wait this long before the next.
RETRY_SECONDS = 0.5
# Waiters' deadlines are kept to this step (rounded up), so those that end
# within the same step share one timer of the event loop.
ALARM_STEP_SECONDS = 0.05


class TailEntry(Protocol):
    """What the tail needs of a decoded stream entry (change_log._Entry)."""

    @property
    def cursor(self) -> str: ...

    @property
    def prev(self) -> str: ...


class LogTail:
    """Follows the end of one Redis stream for every waiter of this process."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream_key: str,
        *,
        decode: Callable[[Any, Any], TailEntry],
        entries_of: Callable[[Any], Iterator[tuple[Any, Any]]],
        latest: Callable[[], Any],
    ) -> None:
        self._redis = redis
        self._stream_key = stream_key
        self._decode = decode
        self._entries_of = entries_of
        self._latest = latest
        # The entries, oldest first, and their cursors as sortable keys: a
        # waiter finds its place by binary search (thousands of waiters wake
        # on every publish).
        self._kept: list[TailEntry] = []
        self._keys: list[tuple[int, int]] = []
        # The newest entry id the task has seen ("" until it has read once), and
        # as a sortable key; the key of the entry before the oldest kept one.
        # (Parsed once here rather than by each of thousands of waiters.)
        self._tip = ""
        self._tip_key = (0, 0)
        self._base_key = (0, 0)
        # The waiters' futures, resolved (and forgotten) whenever the tip moves
        # (a dict: ordered, and a waiter that ends otherwise leaves at once);
        # and the alarms of their deadlines, by time slot.
        self._sleepers: dict[asyncio.Future[None], None] = {}
        self._alarms: dict[float, list[asyncio.Future[None]]] = {}
        self._waiters = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def waiters(self) -> int:
        return self._waiters

    @property
    def tip(self) -> str:
        """The newest entry id the shared reader has seen ("" when it is not running)."""
        return self._tip

    @property
    def following(self) -> bool:
        """Whether the shared reader is running and has read the log's end once:
        then anything newer than its memory wakes the waiters."""
        return self._task is not None and not self._task.done() and bool(self._tip)

    def after(self, cursor: str, count: int) -> list[TailEntry] | None:
        """Up to `count` entries after `cursor` from memory, or None when memory
        cannot tell (the cursor is before what it holds, or nothing is held).
        An empty list means: nothing after the cursor up to the tip seen."""
        if not self._kept or not self._tip:
            return None
        wanted = cursor_key(cursor)
        if wanted < self._base_key or wanted > self._tip_key:
            return None
        start = bisect.bisect_right(self._keys, wanted)
        return self._kept[start : start + count]

    async def wait_beyond(self, cursor: str, seconds: float, stop: asyncio.Event | None) -> bool:
        """Waits until the log has an entry after `cursor` (True), or `seconds`
        passes or `stop` is set (False). The deadline is kept to ALARM_STEP_SECONDS."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        wanted = cursor_key(cursor)
        self._waiters += 1
        try:
            self._ensure_running()
            while True:
                if self._tip and self._tip_key > wanted:
                    return True
                if loop.time() >= deadline or (stop is not None and stop.is_set()) or self._closed:
                    return False
                # One future of this waiter's own, resolved by whichever comes
                # first: the tip moving, the deadline's alarm, `stop`. No task and
                # no timer of its own: thousands of streams wake on every publish.
                woken: asyncio.Future[None] = loop.create_future()
                self._sleepers[woken] = None
                self._alarm(loop, deadline, woken)
                watch = _watch(stop, woken)
                try:
                    await woken
                finally:
                    watch()
                    self._sleepers.pop(woken, None)
        finally:
            self._waiters -= 1

    def _alarm(
        self, loop: asyncio.AbstractEventLoop, deadline: float, woken: asyncio.Future[None]
    ) -> None:
        """Resolves `woken` at `deadline`, rounded up to ALARM_STEP_SECONDS: waiters
        whose deadlines round alike share one timer."""
        slot = math.ceil(deadline / ALARM_STEP_SECONDS) * ALARM_STEP_SECONDS
        bucket = self._alarms.get(slot)
        if bucket is None:
            bucket = self._alarms[slot] = []
            loop.call_at(slot, self._ring, slot)
        bucket.append(woken)

    def _ring(self, slot: float) -> None:
        for woken in self._alarms.pop(slot, ()):
            _resolve(woken)

    async def aclose(self) -> None:
        self._closed = True
        self._wake()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _ensure_running(self) -> None:
        if self._closed or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.create_task(self._follow(), name=f"tail {self._stream_key}")

    def _wake(self) -> None:
        sleepers, self._sleepers = self._sleepers, {}
        for woken in sleepers:
            _resolve(woken)

    async def _follow(self) -> None:
        try:
            while self._waiters > 0 and not self._closed:
                try:
                    if not self._tip:
                        # Memory is dropped whenever the task stops, so a restart
                        # begins at the log's end, not with what it missed.
                        self._move_tip(str(await self._latest()) or OLDEST)
                        self._wake()
                        continue
                    with unavailable_when_redis_is("the change log"):
                        response = await self._redis.xread(
                            {self._stream_key: self._tip}, count=READ_COUNT, block=BLOCK_MS
                        )
                    self._take([self._decode(i, f) for i, f in self._entries_of(response)])
                except Exception as error:
                    # Waiters keep their own deadlines and read Redis themselves
                    # (and report its errors); the tail only tries again.
                    log.warning("change log tail: read failed: %s", error)
                    await asyncio.sleep(RETRY_SECONDS)
                stop_if_cancelled()
        finally:
            self._forget()
            self._move_tip("")
            self._wake()

    def _take(self, entries: list[TailEntry]) -> None:
        if not entries:
            return
        first = entries[0]
        if self._kept and first.prev != self._kept[-1].cursor:
            self._forget()  # trimmed or emptied between two reads: restart the memory
        self._kept.extend(entries)
        self._keys.extend(cursor_key(entry.cursor) for entry in entries)
        if len(self._kept) > 2 * KEEP_ENTRIES:
            del self._kept[:-KEEP_ENTRIES]
            del self._keys[:-KEEP_ENTRIES]
        self._base_key = cursor_key(self._kept[0].prev)
        self._move_tip(entries[-1].cursor)
        self._wake()

    def _move_tip(self, tip: str) -> None:
        self._tip = tip
        self._tip_key = cursor_key(tip)

    def _forget(self) -> None:
        self._kept.clear()
        self._keys.clear()


class Stop(asyncio.Event):
    """An asyncio.Event that, once set, also resolves the futures handed to
    `notify`: a wait that ends on it needs no task of its own per wait."""

    def __init__(self) -> None:
        super().__init__()
        self._futures: set[asyncio.Future[None]] = set()

    def notify(self, future: asyncio.Future[None]) -> None:
        self._futures.add(future)

    def forget(self, future: asyncio.Future[None]) -> None:
        self._futures.discard(future)

    def set(self) -> None:
        super().set()
        futures, self._futures = self._futures, set()
        for future in futures:
            _resolve(future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _watch(stop: asyncio.Event | None, woken: asyncio.Future[None]) -> Callable[[], None]:
    """Resolves `woken` when `stop` is set; returns what undoes that."""
    if stop is None:
        return lambda: None
    if isinstance(stop, Stop):
        stop.notify(woken)
        return lambda: stop.forget(woken)
    # A plain asyncio.Event offers no callback: a task waits on it.
    stopping = asyncio.ensure_future(stop.wait())
    stopping.add_done_callback(lambda _: _resolve(woken))

    def undo() -> None:
        stopping.cancel()

    return undo
