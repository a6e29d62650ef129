"""The change log on one Redis stream: idempotent appends, retention, ordered
reads that never skip silently.

    log = ChangeLog(connect(url), "profilesync:changes", max_events=1_000_000,
                    max_age_seconds=7 * 86400)
    result = await log.publish(events)    # PublishResult(accepted=2, duplicates=0, last_cursor=...)
    events = await log.read(None, count=100, block_ms=0)  # oldest first, each with `cursor` set
    await log.read("1700000000000-0", 100, 0)  # raises LogGap if events after it were trimmed

Each stream entry (id = the event's cursor) has the fields `event_id`,
`event` (the serialized ChangeEvent, cursor unset), `seq` (how many events
the log had appended, this one included) and `prev` (the id of the entry
appended just before it, "0-0" for the first). Other keys: see redis_keys.py.

Retention. Appends trim the stream to about `max_events` (XTRIM MAXLEN ~)
and drop entries older than `max_age_seconds` (XTRIM MINID ~); `trim()` does
the age part for a log nobody publishes to. The `~` lets Redis drop whole
internal nodes, so it keeps slightly more than asked, never less. Event ids
are remembered for `dedupe_ttl_seconds` (by default as long as the age
limit), so a republish within the retention window is dropped.

Gaps. Redis does not record what trimming removed; `prev` does. Reading
after cursor C returns the first retained entry E after C: if E.prev is
after C, the entries between were trimmed and the read raises LogGap
instead of returning E. When nothing follows C, C is behind only if the
stream once had an entry after it (its last generated id). A first entry
whose prev is "0-0" while C is not means the log was lost (Redis emptied)
and started again: that is a gap too, since what followed C is unknown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from profilesync.v1.notifier_pb2 import ChangeEvent
from services.common.lua_scripts import LuaScript
from services.common.redis_client import as_text, unavailable_when_redis_is
from services.lob_notifier.cursors import OLDEST, cursor_key
from services.lob_notifier.redis_keys import KeyLayout
from services.lob_notifier.tail import LogTail

__all__ = ["Backlog", "ChangeLog", "LogGap", "PublishResult"]

log = logging.getLogger(__name__)

# The scripts (services/lob_notifier/lua/): each file's header names its keys,
# arguments and answer.
_PUBLISH = LuaScript("services.lob_notifier", "publish.lua")
_TRIM = LuaScript("services.lob_notifier", "trim.lua")
_FOLLOWING = LuaScript("services.lob_notifier", "following.lua")
_OLDEST = LuaScript("services.lob_notifier", "oldest.lua")


@dataclass(frozen=True)
class PublishResult:
    """What one publish did; `last_cursor` is the log's last entry afterwards ("" if empty)."""

    accepted: int
    duplicates: int
    last_cursor: str


@dataclass(frozen=True)
class Backlog:
    """What waits after a position: `events` entries, the oldest appended at `oldest_ms`."""

    events: int
    oldest_ms: int | None


class LogGap(Exception):
    """Events after `cursor` are gone (trimmed by retention, or the log was lost)."""

    def __init__(self, cursor: str, *, log_reset: bool = False) -> None:
        self.cursor = cursor
        self.log_reset = log_reset
        what = "the change log was emptied and restarted" if log_reset else "retention removed them"
        super().__init__(f"events after {cursor} are no longer in the change log ({what})")


@dataclass(frozen=True)
class _Entry:
    event: ChangeEvent
    prev: str
    seq: int

    @property
    def cursor(self) -> str:
        return self.event.cursor


class ChangeLog:
    """The notifier's log of ChangeEvents on a Redis stream (layout in the module doc)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream_key: str,
        *,
        max_events: int = 1_000_000,
        max_age_seconds: int = 0,
        dedupe_ttl_seconds: int | None = None,
        publisher: aioredis.Redis | None = None,
    ) -> None:
        self._redis = redis
        # Appends go through their own client (their own connection pool) when
        # one is given, so a sync's publish never queues behind readers.
        self._publisher = publisher or redis
        self.keys = KeyLayout(stream_key)
        self.max_events = max_events
        self.max_age_seconds = max_age_seconds
        # A dedupe window shorter than the retention would let a republished
        # event in twice while the first copy is still readable.
        self._dedupe_ttl_seconds = dedupe_ttl_seconds or max_age_seconds or 7 * 24 * 3600
        self._publish_script = _PUBLISH.register(self._publisher)
        self._trim_script = _TRIM.register(redis)
        self._following_script = _FOLLOWING.register(redis)
        self._oldest_script = _OLDEST.register(redis)
        self._tail = LogTail(
            redis,
            self.keys.stream,
            decode=_decode,
            entries_of=_entries,
            latest=self.latest_position,
        )

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    @property
    def waiting(self) -> int:
        """Calls of this process waiting for new events (on the shared reader)."""
        return self._tail.waiters

    async def aclose(self) -> None:
        """Stops the shared reader; waiting reads answer at once. The clients stay open."""
        await self._tail.aclose()

    @property
    def stream_key(self) -> str:
        return self.keys.stream

    def dedupe_key(self, event_id: str) -> str:
        return self.keys.dedupe(event_id)

    def retention_text(self) -> str:
        """The retention in words, for error messages."""
        text = f"the newest {self.max_events:,} events"
        if self.max_age_seconds:
            text += f", for at most {_duration(self.max_age_seconds)}"
        return text

    async def publish(self, events: Sequence[ChangeEvent]) -> PublishResult:
        """Appends the events in order, dropping those whose `event_id` the log already has."""
        if not events:
            return PublishResult(0, 0, await self.last_cursor())
        keys: list[str] = [self.keys.stream, self.keys.seq]
        args: list[int | str | bytes] = [
            self._dedupe_ttl_seconds,
            self.max_events,
            self.max_age_seconds * 1000,
        ]
        for event in events:
            if not event.event_id:
                raise ValueError("every event needs an event_id")
            keys.append(self.keys.dedupe(event.event_id))
            args.extend((event.event_id, _stored_bytes(event)))
        with unavailable_when_redis_is("the change log"):
            accepted, duplicates, last_cursor = await self._publish_script(keys=keys, args=args)
        return PublishResult(int(accepted), int(duplicates), as_text(last_cursor))

    async def trim(self) -> int:
        """Drops events older than the age limit now (appends do it too); returns the length."""
        with unavailable_when_redis_is("the change log"):
            length = await self._trim_script(
                keys=[self.keys.stream], args=[self.max_age_seconds * 1000]
            )
        return int(length)

    async def read(
        self,
        after_cursor: str | None,
        count: int,
        block_ms: int,
        *,
        check_idle: bool = True,
        stop: asyncio.Event | None = None,
        trust_memory: bool | None = None,
    ) -> list[ChangeEvent]:
        """Up to `count` events after the cursor (None or "": from the oldest retained).

        With `block_ms` > 0 and nothing to read yet, waits up to that long and
        returns as soon as something is published (or `stop` is set). Raises
        LogGap when events after the cursor are gone. `check_idle=False` skips
        the extra look-up that finds a gap when nothing follows the cursor
        (a stream that just read up to the cursor knows there was none).

        `trust_memory` (by default: when the call may wait) lets the shared
        reader's memory answer "nothing after the cursor yet" while that reader
        follows the log, without asking Redis: the memory may be a few
        milliseconds behind, which a stream (whose "now" is approximate anyway)
        or a wait (woken by anything newer) does not notice. A plain read asks
        Redis, so it sees what was published just before it.
        """
        start = after_cursor or OLDEST
        checked = bool(after_cursor)
        # Thousands of streams then cost no Redis read between two events, and
        # opening them costs none while the shared reader follows the log.
        trust = block_ms > 0 if trust_memory is None else trust_memory
        entries, from_memory = await self._read_now(start, count, trust_memory=trust)
        if not entries and checked and check_idle and not from_memory:
            # (The memory is gap-free from before the cursor to its tip.)
            await self._check_idle(start)
        if not entries and block_ms > 0:
            # The wait is on the process's one shared reader (tail.py), not on
            # a Redis connection of this call's own.
            if not await self._tail.wait_beyond(start, block_ms / 1000, stop):
                return []
            entries, _ = await self._read_now(start, count)
            if not entries:
                # Woken by an entry that retention has already removed again.
                if checked:
                    await self._check_idle(start)
                return []
        if checked and entries:
            _check_continuity(start, entries[0])
        return [entry.event for entry in entries]

    async def has_gap(self, cursor: str) -> bool:
        """Whether events after `cursor` were lost (reading after it would raise LogGap)."""
        try:
            await self.read(cursor or OLDEST, 1, 0)
        except LogGap:
            return True
        return False

    async def between(self, first: str, last: str, count: int) -> list[ChangeEvent]:
        """The events from cursor `first` to `last`, both included (at most `count`)."""
        with unavailable_when_redis_is("the change log"):
            entries: list[Any] = (
                await self._redis.xrange(self.keys.stream, first, last, count=count) or []
            )
        return [_decode(entry_id, fields or {}).event for entry_id, fields in entries]

    async def last_cursor(self) -> str:
        """The cursor of the newest event in the log, "" when the log is empty."""
        with unavailable_when_redis_is("the change log"):
            newest = await self._redis.xrevrange(self.keys.stream, "+", "-", count=1)
        if not newest or newest[0][0] is None:
            return ""
        return as_text(newest[0][0])

    async def head_position(self) -> str:
        """Where "from now" starts: the shared reader's position while it follows
        the log (no Redis call; at most milliseconds behind, so an event
        published just before is sent rather than missed), else latest_position()."""
        if self._tail.following:
            return self._tail.tip
        return await self.latest_position()

    async def latest_position(self) -> str:
        """A cursor after every event so far (even once retention emptied the log)."""
        following = await self._following(OLDEST)
        return following[3] or OLDEST

    async def oldest_position(self) -> str:
        """A cursor just before the oldest retained event: reading after it misses nothing."""
        with unavailable_when_redis_is("the change log"):
            oldest = await self._oldest_script(keys=[self.keys.stream])
        if not oldest:
            return await self.latest_position()
        return as_text(oldest[1]) or OLDEST

    async def backlog(self, cursor: str) -> Backlog:
        """How many events follow `cursor`, and when the first of them was appended."""
        first_id, _prev, first_seq, _last, appended = await self._following(cursor or OLDEST)
        if not first_id:
            return Backlog(0, None)
        return Backlog(int(appended) - int(first_seq) + 1, cursor_key(first_id)[0])

    async def _following(self, cursor: str) -> tuple[str, str, str, str, str]:
        with unavailable_when_redis_is("the change log"):
            answer = await self._following_script(
                keys=[self.keys.stream, self.keys.seq], args=[cursor]
            )
        first_id, prev, seq, last_id, appended = (as_text(part) for part in answer)
        return first_id, prev, seq, last_id, appended

    async def _check_idle(self, cursor: str) -> None:
        first_id, prev, _seq, last_id, _appended = await self._following(cursor)
        if first_id:
            # Published since the read: judge by the entry itself.
            _check_continuity(cursor, _Entry(ChangeEvent(cursor=first_id), prev, 0))
        elif last_id and cursor_key(last_id) > cursor_key(cursor):
            # The stream once had an entry after the cursor and holds none now.
            raise LogGap(cursor)

    async def _read_now(
        self, start: str, count: int, *, trust_memory: bool = False
    ) -> tuple[list[_Entry], bool]:
        """What follows `start` now, and whether it came from the shared reader's
        memory (no Redis call) rather than one non-blocking XREAD. With
        `trust_memory`, the memory's "nothing yet" is taken as the answer while
        the shared reader is following the log."""
        kept = self._tail.after(start, count)
        if kept or (kept is not None and trust_memory and self._tail.following):
            return cast(list[_Entry], kept), True  # the tail holds what _decode made
        with unavailable_when_redis_is("the change log"):
            response = await self._redis.xread({self.keys.stream: start}, count=count)
        return [_decode(entry_id, fields) for entry_id, fields in _entries(response)], False


def _check_continuity(cursor: str, first: _Entry) -> None:
    """`first` is the first entry after `cursor`; raises LogGap if others were between."""
    if cursor_key(first.prev) > cursor_key(cursor):
        raise LogGap(cursor)
    if first.prev == OLDEST and cursor_key(cursor) != (0, 0):
        raise LogGap(cursor, log_reset=True)


def _duration(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


def _stored_bytes(event: ChangeEvent) -> bytes:
    # The cursor is the entry id Redis assigns; a cursor sent in is meaningless here.
    if not event.cursor and not event.heartbeat:
        return event.SerializeToString()
    stored = ChangeEvent()
    stored.CopyFrom(event)
    stored.ClearField("cursor")
    stored.ClearField("heartbeat")
    return stored.SerializeToString()


def _entries(response: Any) -> Iterator[tuple[bytes | str, dict[Any, Any]]]:
    """The (entry id, fields) pairs of an XREAD answer on one stream, RESP2 or RESP3."""
    if not response:
        return
    streams = response.values() if isinstance(response, dict) else (item[1] for item in response)
    for entries in streams:
        for entry_id, fields in entries:
            yield entry_id, fields or {}


def _decode(entry_id: bytes | str, fields: dict[Any, Any]) -> _Entry:
    # Needs a client that keeps responses as bytes (services.common.redis_client
    # does): the payload is binary protobuf.
    payload, prev, seq = fields.get(b"event"), fields.get(b"prev"), fields.get(b"seq")
    if not isinstance(payload, bytes) or prev is None or seq is None:
        raise ValueError(f"stream entry {as_text(entry_id)} lacks its binary event, prev or seq")
    event = ChangeEvent.FromString(payload)
    event.cursor = as_text(entry_id)
    return _Entry(event, as_text(prev), int(seq))
