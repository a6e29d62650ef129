"""Named subscribers in Redis: settings, positions, delivery status, dead letters.

    store = SubscriberStore(redis, KeyLayout("profilesync:changes"))
    record, created = await store.put("crm", url="https://crm.example/hook", secret="...",
                                      source="api", start_cursor="0-0", max_subscribers=100)
    await store.ack("crm", "1700000000000-3")          # pull subscribers: forward only
    record = await store.get("crm")                    # SubscriberRecord or None

A subscriber is one hash (redis_keys.py) in a versioned envelope (`v`), holding:

    url, secret, source (api|file), created_ms,      settings
    owner (who created it through the API)
    cursor                                           the position
    last_success_ms, last_attempt_ms, last_error,    delivery status
    last_error_ms, failures, failures_key,
    next_attempt_ms, delivered

Writes made while delivering webhooks (`record_success`, `record_failure`,
`park`) run only while the caller holds the subscriber's lease: each
checks it inside its script (lease.CHECK_LUA), so a replica that lost the
lease cannot move a position another replica now owns.

A dead letter refers to its events by cursor range (they stay in the log,
which keeps them for the retention period); it holds no copy, so a long
outage cannot fill Redis with copies of the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from services.common.redis_client import unavailable_when_redis_is
from services.lob_notifier.cursors import OLDEST
from services.lob_notifier.lease import CHECK_LUA
from services.lob_notifier.redis_keys import KeyLayout

__all__ = [
    "DeadLetterRecord",
    "ReplayItem",
    "SubscriberRecord",
    "SubscriberStore",
    "TooManySubscribers",
]

ENVELOPE_VERSION = "1"

# Cursor comparison in Lua: ids are normalized decimal text ("<ms>-<seq>"
# without leading zeros), compared by length first, then by text, so no
# number ever goes through Lua's doubles.
_LESS_LUA = """
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms or '0', seq or '0'
end
local function less_digits(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function less(a, b)
  local am, as = parts(a)
  local bm, bs = parts(b)
  if am ~= bm then return less_digits(am, bm) end
  return as ~= bs and less_digits(as, bs)
end
"""

#   KEYS[1] hash, KEYS[2] names set
#   ARGV: name, url, secret ('' keeps the current one), source, now_ms,
#         start cursor, max subscribers, owner (kept from creation on)
_PUT = """
local created = redis.call('EXISTS', KEYS[1]) == 0
if created then
  if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[7]) then return -1 end
  redis.call('HSET', KEYS[1], 'v', '1', 'created_ms', ARGV[5], 'cursor', ARGV[6],
             'owner', ARGV[8])
end
redis.call('HSET', KEYS[1], 'url', ARGV[2], 'source', ARGV[4])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'secret')
elseif ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'secret', ARGV[3])
end
redis.call('SADD', KEYS[2], ARGV[1])
if created then return 1 end
return 0
"""

#   KEYS[1] hash; ARGV[1] cursor, ARGV[2] now_ms
_ACK = (
    _LESS_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], 'cursor') or '0-0'
if less(current, ARGV[1]) then
  redis.call('HSET', KEYS[1], 'cursor', ARGV[1], 'last_success_ms', ARGV[2])
  return 1
end
return 0
"""
)

#   KEYS[1] hash; ARGV[1] cursor
_SEEK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[1], 'failures', 0, 'failures_key', '',
           'next_attempt_ms', 0)
return 1
"""

#   KEYS[1] lease, KEYS[2] hash, KEYS[3] replay list
#   ARGV: owner, now_ms, new cursor ('' for a replayed batch: pop it instead),
#         the cursor the batch was read after, events delivered
_SUCCESS = (
    CHECK_LUA
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if ARGV[3] == '' then
  redis.call('LPOP', KEYS[3])
elseif redis.call('HGET', KEYS[2], 'cursor') == ARGV[4] then
  -- Unless someone moved the position meanwhile (SeekSubscriber wins).
  redis.call('HSET', KEYS[2], 'cursor', ARGV[3])
end
redis.call('HSET', KEYS[2], 'last_success_ms', ARGV[2], 'last_attempt_ms', ARGV[2],
           'failures', 0, 'failures_key', '', 'next_attempt_ms', 0)
redis.call('HINCRBY', KEYS[2], 'delivered', ARGV[5])
return 1
"""
)

#   KEYS[1] lease, KEYS[2] hash
#   ARGV: owner, now_ms, error, failures, failures_key, next_attempt_ms
_FAILURE = (
    CHECK_LUA
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'last_attempt_ms', ARGV[2], 'last_error', ARGV[3],
           'last_error_ms', ARGV[2], 'failures', ARGV[4], 'failures_key', ARGV[5],
           'next_attempt_ms', ARGV[6])
return 1
"""
)

#   KEYS[1] lease, KEYS[2] hash, KEYS[3] dead stream, KEYS[4] replay list
#   ARGV: owner, now_ms, new cursor ('' for a replayed batch), the cursor the
#         batch was read after, error, dead-letter max, delivery id, first
#         cursor, last cursor, event count, attempts
_PARK = (
    CHECK_LUA
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
                      'delivery_id', ARGV[7], 'first', ARGV[8], 'last', ARGV[9],
                      'count', ARGV[10], 'attempts', ARGV[11], 'error', ARGV[5],
                      'park_ms', ARGV[2])
if ARGV[3] == '' then
  redis.call('LPOP', KEYS[4])
elseif redis.call('HGET', KEYS[2], 'cursor') == ARGV[4] then
  redis.call('HSET', KEYS[2], 'cursor', ARGV[3])
end
redis.call('HSET', KEYS[2], 'last_attempt_ms', ARGV[2], 'last_error', ARGV[5],
           'last_error_ms', ARGV[2], 'failures', 0, 'failures_key', '', 'next_attempt_ms', 0)
return id
"""
)

# Replay items are "<dead letter id> <delivery id> <first> <last> <count>":
# none of these contains a space.
#   KEYS[1] hash, KEYS[2] dead stream, KEYS[3] replay list; ARGV: ids, or none for all
_REPLAY = """
local unpack = unpack or table.unpack
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local function item(entry)
  local f = {}
  for i = 1, #entry[2], 2 do f[entry[2][i]] = entry[2][i + 1] end
  return table.concat({entry[1], f['delivery_id'] or '', f['first'] or '', f['last'] or '',
                       f['count'] or '0'}, ' ')
end
local queued, missing = 0, {}
if #ARGV == 0 then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    redis.call('RPUSH', KEYS[3], item(entry))
    queued = queued + 1
  end
  redis.call('DEL', KEYS[2])
else
  for _, id in ipairs(ARGV) do
    local found = redis.call('XRANGE', KEYS[2], id, id)
    if #found == 0 then
      table.insert(missing, id)
    else
      redis.call('RPUSH', KEYS[3], item(found[1]))
      redis.call('XDEL', KEYS[2], id)
      queued = queued + 1
    end
  end
end
return {queued, unpack(missing)}
"""


class TooManySubscribers(Exception):
    """Creating one more subscriber would pass the configured maximum."""


@dataclass(frozen=True)
class SubscriberRecord:
    name: str
    url: str
    secret: str = field(repr=False)
    source: str
    created_ms: int
    cursor: str
    last_success_ms: int = 0
    last_attempt_ms: int = 0
    last_error: str = ""
    last_error_ms: int = 0
    failures: int = 0
    failures_key: str = ""
    next_attempt_ms: int = 0
    delivered: int = 0
    # The object id of the caller that created it through the API ("" for the file's).
    owner: str = ""

    @property
    def is_webhook(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class DeadLetterRecord:
    """A parked batch: the events from `first` to `last` (inclusive) in the log."""

    id: str
    delivery_id: str
    first: str
    last: str
    count: int
    attempts: int
    error: str
    park_ms: int


@dataclass(frozen=True)
class ReplayItem:
    dead_letter_id: str
    delivery_id: str
    first: str
    last: str
    count: int


def now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> int:
    text = _text(value)
    return int(text) if text.lstrip("-").isdigit() else 0


class SubscriberStore:
    """Subscribers of one change log (layout in the module doc)."""

    def __init__(self, redis: aioredis.Redis, keys: KeyLayout) -> None:
        self._redis = redis
        self.keys = keys
        self._put = redis.register_script(_PUT)
        self._ack = redis.register_script(_ACK)
        self._seek = redis.register_script(_SEEK)
        self._success = redis.register_script(_SUCCESS)
        self._failure = redis.register_script(_FAILURE)
        self._park = redis.register_script(_PARK)
        self._replay = redis.register_script(_REPLAY)

    # -- settings -----------------------------------------------------------
    async def put(
        self,
        name: str,
        *,
        url: str,
        secret: str,
        source: str,
        start_cursor: str,
        max_subscribers: int,
        owner: str = "",
    ) -> tuple[SubscriberRecord, bool]:
        """Creates (at `start_cursor`) or replaces the settings; True when created."""
        with unavailable_when_redis_is("the change log"):
            outcome = await self._put(
                keys=[self.keys.subscriber(name), self.keys.subscribers],
                args=[name, url, secret, source, now_ms(), start_cursor, max_subscribers, owner],
            )
        if int(outcome) < 0:
            raise TooManySubscribers(f"at most {max_subscribers} subscribers")
        record = await self.get(name)
        assert record is not None  # just written
        return record, bool(int(outcome))

    async def get(self, name: str) -> SubscriberRecord | None:
        with unavailable_when_redis_is("the change log"):
            fields = await self._redis.hgetall(self.keys.subscriber(name))
        if not fields:
            return None
        values = {_text(key): value for key, value in fields.items()}
        return SubscriberRecord(
            name=name,
            url=_text(values.get("url")),
            secret=_text(values.get("secret")),
            source=_text(values.get("source")) or "api",
            created_ms=_number(values.get("created_ms")),
            cursor=_text(values.get("cursor")) or OLDEST,
            last_success_ms=_number(values.get("last_success_ms")),
            last_attempt_ms=_number(values.get("last_attempt_ms")),
            last_error=_text(values.get("last_error")),
            last_error_ms=_number(values.get("last_error_ms")),
            failures=_number(values.get("failures")),
            failures_key=_text(values.get("failures_key")),
            next_attempt_ms=_number(values.get("next_attempt_ms")),
            delivered=_number(values.get("delivered")),
            owner=_text(values.get("owner")),
        )

    async def names(self) -> list[str]:
        with unavailable_when_redis_is("the change log"):
            members = await self._redis.smembers(self.keys.subscribers)
        return sorted(_text(member) for member in members)

    async def all(self) -> list[SubscriberRecord]:
        records = []
        for name in await self.names():
            record = await self.get(name)
            if record is not None:
                records.append(record)
        return records

    async def delete(self, name: str) -> bool:
        keys = self.keys
        with unavailable_when_redis_is("the change log"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.srem(keys.subscribers, name)
                pipe.delete(keys.subscriber(name))
                # Deleting the lease stops the replica delivering at its next check.
                pipe.delete(keys.lease(name), keys.dead(name), keys.replay(name))
                removed, existed, _ = await pipe.execute()
        return bool(existed) or bool(removed)

    # -- positions ----------------------------------------------------------
    async def ack(self, name: str, cursor: str) -> bool | None:
        """Moves the position forward to `cursor`; None if no such subscriber."""
        with unavailable_when_redis_is("the change log"):
            moved = await self._ack(keys=[self.keys.subscriber(name)], args=[cursor, now_ms()])
        if int(moved) < 0:
            return None
        return bool(int(moved))

    async def seek(self, name: str, cursor: str) -> bool:
        with unavailable_when_redis_is("the change log"):
            found = await self._seek(keys=[self.keys.subscriber(name)], args=[cursor])
        return bool(int(found))

    # -- webhook delivery (lease holder only) --------------------------------
    async def record_success(
        self, name: str, lease_owner: str, *, read_after: str, new_cursor: str, events: int
    ) -> bool:
        """After a 2xx: moves the position to `new_cursor` ("" for a replayed batch)."""
        keys = self.keys
        with unavailable_when_redis_is("the change log"):
            done = await self._success(
                keys=[keys.lease(name), keys.subscriber(name), keys.replay(name)],
                args=[lease_owner, now_ms(), new_cursor, read_after, events],
            )
        return bool(int(done))

    async def record_failure(
        self,
        name: str,
        lease_owner: str,
        *,
        error: str,
        failures: int,
        failures_key: str,
        next_attempt_ms: int,
    ) -> bool:
        keys = self.keys
        with unavailable_when_redis_is("the change log"):
            done = await self._failure(
                keys=[keys.lease(name), keys.subscriber(name)],
                args=[lease_owner, now_ms(), error, failures, failures_key, next_attempt_ms],
            )
        return bool(int(done))

    async def park(
        self,
        name: str,
        lease_owner: str,
        *,
        read_after: str,
        new_cursor: str,
        error: str,
        dead_letter_max: int,
        delivery_id: str,
        first: str,
        last: str,
        count: int,
        attempts: int,
    ) -> str | None:
        """Dead-letters a batch and moves past it; returns the dead letter's id."""
        keys = self.keys
        with unavailable_when_redis_is("the change log"):
            parked = await self._park(
                keys=[keys.lease(name), keys.subscriber(name), keys.dead(name), keys.replay(name)],
                args=[
                    lease_owner,
                    now_ms(),
                    new_cursor,
                    read_after,
                    error,
                    dead_letter_max,
                    delivery_id,
                    first,
                    last,
                    count,
                    attempts,
                ],
            )
        if isinstance(parked, int):
            return None
        return _text(parked)

    # -- dead letters ---------------------------------------------------------
    async def dead_letters(
        self, name: str, *, after: str, count: int
    ) -> tuple[list[DeadLetterRecord], bool]:
        """Up to `count` dead letters after id `after` ("" from the first); True if more follow."""
        start = f"({after}" if after else "-"
        with unavailable_when_redis_is("the change log"):
            entries: list[Any] = (
                await self._redis.xrange(self.keys.dead(name), start, "+", count=count + 1) or []
            )
        records = [_dead_letter(entry_id, fields or {}) for entry_id, fields in entries[:count]]
        return records, len(entries) > count

    async def dead_letter_count(self, name: str) -> int:
        with unavailable_when_redis_is("the change log"):
            return int(await self._redis.xlen(self.keys.dead(name)))

    async def replay_count(self, name: str) -> int:
        with unavailable_when_redis_is("the change log"):
            return int(await self._redis.llen(self.keys.replay(name)))

    async def queue_replay(self, name: str, ids: list[str] | None) -> tuple[int, list[str]] | None:
        """Moves dead letters (all when `ids` is None) to the replay queue.

        Returns (queued, ids not found), or None when there is no such subscriber.
        """
        keys = self.keys
        with unavailable_when_redis_is("the change log"):
            answer = await self._replay(
                keys=[keys.subscriber(name), keys.dead(name), keys.replay(name)],
                args=_in_order(ids) if ids is not None else [],
            )
        if int(answer[0]) < 0:
            return None
        return int(answer[0]), [_text(item) for item in answer[1:]]

    async def next_replay(self, name: str) -> ReplayItem | None:
        with unavailable_when_redis_is("the change log"):
            head = await self._redis.lindex(self.keys.replay(name), 0)
        if head is None:
            return None
        parts = _text(head).split(" ")
        if len(parts) != 5:
            # Not ours to interpret: drop it rather than block the queue.
            with unavailable_when_redis_is("the change log"):
                await self._redis.lpop(self.keys.replay(name))
            return None
        dead_id, delivery_id, first, last, count = parts
        return ReplayItem(dead_id, delivery_id, first, last, _number(count))


def _in_order(ids: list[str]) -> list[int | str | bytes]:
    """Distinct ids in the order they were parked (replays keep that order)."""

    def key(value: str) -> tuple[int, int]:
        ms, _, seq = value.partition("-")
        return (int(ms), int(seq)) if ms.isdigit() and seq.isdigit() else (0, 0)

    ordered = sorted(set(ids), key=key)
    return list(ordered)


def _dead_letter(entry_id: Any, fields: dict[Any, Any]) -> DeadLetterRecord:
    values = {_text(key): value for key, value in fields.items()}
    return DeadLetterRecord(
        id=_text(entry_id),
        delivery_id=_text(values.get("delivery_id")),
        first=_text(values.get("first")),
        last=_text(values.get("last")),
        count=_number(values.get("count")),
        attempts=_number(values.get("attempts")),
        error=_text(values.get("error")),
        park_ms=_number(values.get("park_ms")),
    )
