"""The change log on one Redis stream: idempotent appends and ordered reads.

    log = ChangeLog(connect(url), "profilesync:changes")
    result = await log.publish(events)    # PublishResult(accepted=2, duplicates=0, last_cursor=...)
    page = await log.read(None, count=100, block_ms=0)  # oldest first, each with `cursor` set

Key layout, for the stream key S (default `profilesync:changes`):

    S                        stream, one entry per event; fields `event_id` and `event`
                             (the serialized ChangeEvent, cursor unset). The entry id is
                             the event's cursor. Trimmed with XADD MAXLEN ~ max_events.
    {S}:dedupe:<event_id>    string holding the entry id the event got; expires after
                             dedupe_ttl_seconds. Its presence makes a republish a duplicate.

The braces make every dedupe key hash to the stream's slot, so the script that
touches both also runs on a Redis Cluster (ElastiCache cluster mode). A stream
key that already carries a hash tag keeps its own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from profilesync.v1.notifier_pb2 import ChangeEvent
from services.common.errors import Unavailable
from services.lob_notifier.cursors import OLDEST

__all__ = ["ChangeLog", "PublishResult"]

log = logging.getLogger(__name__)

# Longest single XREAD BLOCK. Longer waits are cut into blocks this size so a
# blocked read never reaches the client's socket timeout (30 s in
# services.common.redis_client) and a stopping server is not held up.
MAX_BLOCK_MS = 5_000

# One call for the whole batch: appends each event whose id is not yet known,
# in order, and remembers the id. A script runs atomically, so a crash or a
# lost connection leaves either both the entry and its dedupe key or neither.
# The entry is appended before the dedupe key is written: if a command were
# ever to fail mid-script (Redis does not roll scripts back), the worst case is
# an event logged twice on retry, never an event marked seen but not logged.
#   KEYS[1] the stream; KEYS[1 + i] the dedupe key of event i
#   ARGV[1] dedupe ttl (s); ARGV[2] max stream length;
#   ARGV[2i + 1], ARGV[2i + 2] event i's id and serialized event
_PUBLISH_SCRIPT = """
local accepted, duplicates = 0, 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
                          'event_id', ARGV[2 * i - 1], 'event', ARGV[2 * i])
    redis.call('SET', KEYS[i], id, 'EX', ARGV[1])
    accepted = accepted + 1
  else
    duplicates = duplicates + 1
  end
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local cursor = ''
if #last > 0 then cursor = last[1][1] end
return {accepted, duplicates, cursor}
"""


@dataclass(frozen=True)
class PublishResult:
    """What one publish did; `last_cursor` is the log's last entry afterwards ("" if empty)."""

    accepted: int
    duplicates: int
    last_cursor: str


def _dedupe_prefix(stream_key: str) -> str:
    start = stream_key.find("{")
    if start != -1 and stream_key.find("}", start + 1) > start + 1:
        return f"{stream_key}:dedupe:"
    return f"{{{stream_key}}}:dedupe:"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """Turns "Redis cannot answer now" into Unavailable; other Redis errors are bugs."""
    try:
        yield
    except (
        redis_errors.ConnectionError,  # includes BusyLoadingError (a restarting replica)
        redis_errors.TimeoutError,
        redis_errors.ReadOnlyError,  # a failover in progress
        redis_errors.OutOfMemoryError,
    ) as error:
        log.warning("change log store unavailable: %s", error)
        raise Unavailable(
            f"the change log is unavailable (Redis: {type(error).__name__}); retry later"
        ) from error


class ChangeLog:
    """The notifier's log of ChangeEvents on a Redis stream (key layout in the module doc)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream_key: str,
        *,
        max_events: int = 1_000_000,
        dedupe_ttl_seconds: int = 7 * 24 * 3600,
    ) -> None:
        self._redis = redis
        self._stream_key = stream_key
        self._dedupe_prefix = _dedupe_prefix(stream_key)
        self._max_events = max_events
        self._dedupe_ttl_seconds = dedupe_ttl_seconds
        self._publish_script = redis.register_script(_PUBLISH_SCRIPT)

    @property
    def stream_key(self) -> str:
        return self._stream_key

    def dedupe_key(self, event_id: str) -> str:
        return self._dedupe_prefix + event_id

    async def publish(self, events: Sequence[ChangeEvent]) -> PublishResult:
        """Appends the events in order, dropping those whose `event_id` the log already has."""
        if not events:
            return PublishResult(0, 0, await self.last_cursor())
        keys: list[str] = [self._stream_key]
        args: list[int | str | bytes] = [self._dedupe_ttl_seconds, self._max_events]
        for event in events:
            if not event.event_id:
                raise ValueError("every event needs an event_id")
            keys.append(self.dedupe_key(event.event_id))
            args.extend((event.event_id, _stored_bytes(event)))
        with _store_errors():
            accepted, duplicates, last_cursor = await self._publish_script(keys=keys, args=args)
        return PublishResult(int(accepted), int(duplicates), _text(last_cursor))

    async def read(self, after_cursor: str | None, count: int, block_ms: int) -> list[ChangeEvent]:
        """Up to `count` events after the cursor (None or "": from the oldest retained).

        With `block_ms` > 0 and nothing to read yet, waits up to that long and
        returns as soon as something is published.
        """
        start = after_cursor or OLDEST
        deadline = time.monotonic() + block_ms / 1000
        remaining_ms = block_ms
        while True:
            events = await self._read_once(start, count, min(remaining_ms, MAX_BLOCK_MS))
            if events:
                return events
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return []

    async def last_cursor(self) -> str:
        """The cursor of the newest event in the log, "" when the log is empty."""
        with _store_errors():
            newest = await self._redis.xrevrange(self._stream_key, "+", "-", count=1)
        if not newest or newest[0][0] is None:
            return ""
        return _text(newest[0][0])

    async def _read_once(self, start: str, count: int, block_ms: int) -> list[ChangeEvent]:
        # BLOCK 0 would wait forever in Redis; no block at all is what 0 means here.
        with _store_errors():
            response = await self._redis.xread(
                {self._stream_key: start}, count=count, block=block_ms if block_ms > 0 else None
            )
        return [_decode(entry_id, fields) for entry_id, fields in _entries(response)]


def _stored_bytes(event: ChangeEvent) -> bytes:
    # The cursor is the entry id Redis assigns; a cursor sent in is meaningless here.
    if not event.cursor:
        return event.SerializeToString()
    stored = ChangeEvent()
    stored.CopyFrom(event)
    stored.ClearField("cursor")
    return stored.SerializeToString()


def _entries(response: Any) -> Iterator[tuple[bytes | str, dict[Any, Any]]]:
    """The (entry id, fields) pairs of an XREAD answer on one stream, RESP2 or RESP3."""
    if not response:
        return
    streams = response.values() if isinstance(response, dict) else (item[1] for item in response)
    for entries in streams:
        for entry_id, fields in entries:
            yield entry_id, fields or {}


def _decode(entry_id: bytes | str, fields: dict[Any, Any]) -> ChangeEvent:
    # Needs a client that keeps responses as bytes (services.common.redis_client
    # does): the payload is binary protobuf.
    payload = fields.get(b"event")
    if not isinstance(payload, bytes):
        raise ValueError(f"stream entry {_text(entry_id)} has no binary event field")
    event = ChangeEvent.FromString(payload)
    event.cursor = _text(entry_id)
    return event
