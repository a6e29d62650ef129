"""Named subscribers in Redis: settings, positions, delivery status, dead letters.

    store = SubscriberStore(redis, KeyLayout("profilesync:changes"))
    settings = SubscriberSettings("crm", url="https://crm.example/hook", secret="...", source="api")
    record, created = await store.put(settings, start_cursor="0-0", max_subscribers=100)
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
checks it inside its script (lua/lease_held.lua), so a replica that lost the
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

from services.common.lua_scripts import LuaScript
from services.common.redis_client import as_text, unavailable_when_redis_is
from services.lob_notifier.cursors import OLDEST
from services.lob_notifier.redis_keys import KeyLayout

__all__ = [
    "DeadLetterRecord",
    "ReplayItem",
    "SubscriberRecord",
    "SubscriberSettings",
    "SubscriberStore",
    "TooManySubscribers",
]

# Written into every subscriber created (its hash's `v`), for readers of later versions.
ENVELOPE_VERSION = "1"


# The scripts (services/lob_notifier/lua/): each file's header names its keys,
# arguments and answer.
_PUT = LuaScript("services.lob_notifier", "put.lua")
_ACK = LuaScript("services.lob_notifier", "ack.lua")
_SEEK = LuaScript("services.lob_notifier", "seek.lua")
_SUCCESS = LuaScript("services.lob_notifier", "record_success.lua")
_FAILURE = LuaScript("services.lob_notifier", "record_failure.lua")
_PARK = LuaScript("services.lob_notifier", "park.lua")
_REPLAY = LuaScript("services.lob_notifier", "replay.lua")


class TooManySubscribers(Exception):
    """Creating one more subscriber would pass the configured maximum."""


@dataclass(frozen=True)
class SubscriberSettings:
    """What the API's caller or the subscribers file declares about a subscriber."""

    name: str
    url: str
    secret: str = field(repr=False)
    source: str
    # The object id of the API caller creating it ("" for the file's).
    owner: str = ""


@dataclass(frozen=True, kw_only=True)
class SubscriberRecord(SubscriberSettings):
    """A subscriber as stored: its settings, its position and its delivery status."""

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


def _number(value: Any) -> int:
    text = as_text(value)
    return int(text) if text.lstrip("-").isdigit() else 0


def _text_fields(fields: dict[Any, Any]) -> dict[str, str]:
    """A Redis hash or stream entry, each field and value as text."""
    return {as_text(key): as_text(value) for key, value in fields.items()}


class SubscriberStore:
    """Subscribers of one change log (layout in the module doc)."""

    def __init__(self, redis: aioredis.Redis, keys: KeyLayout) -> None:
        self._redis = redis
        self.keys = keys
        self._put = _PUT.register(redis)
        self._ack = _ACK.register(redis)
        self._seek = _SEEK.register(redis)
        self._success = _SUCCESS.register(redis)
        self._failure = _FAILURE.register(redis)
        self._park = _PARK.register(redis)
        self._replay = _REPLAY.register(redis)

    # -- settings -----------------------------------------------------------
    async def put(
        self, settings: SubscriberSettings, *, start_cursor: str, max_subscribers: int
    ) -> tuple[SubscriberRecord, bool]:
        """Creates (at `start_cursor`) or replaces the settings; True when created."""
        with unavailable_when_redis_is("the change log"):
            outcome = await self._put(
                keys=[self.keys.subscriber(settings.name), self.keys.subscribers],
                args=[
                    settings.name,
                    settings.url,
                    settings.secret,
                    settings.source,
                    now_ms(),
                    start_cursor,
                    max_subscribers,
                    settings.owner,
                    ENVELOPE_VERSION,
                ],
            )
        if int(outcome) < 0:
            raise TooManySubscribers(f"at most {max_subscribers} subscribers")
        record = await self.get(settings.name)
        assert record is not None  # just written
        return record, bool(int(outcome))

    async def get(self, name: str) -> SubscriberRecord | None:
        with unavailable_when_redis_is("the change log"):
            fields = await self._redis.hgetall(self.keys.subscriber(name))
        if not fields:
            return None
        values = _text_fields(fields)
        return SubscriberRecord(
            name=name,
            url=values.get("url", ""),
            secret=values.get("secret", ""),
            source=values.get("source", "") or "api",
            created_ms=_number(values.get("created_ms")),
            cursor=values.get("cursor", "") or OLDEST,
            last_success_ms=_number(values.get("last_success_ms")),
            last_attempt_ms=_number(values.get("last_attempt_ms")),
            last_error=values.get("last_error", ""),
            last_error_ms=_number(values.get("last_error_ms")),
            failures=_number(values.get("failures")),
            failures_key=values.get("failures_key", ""),
            next_attempt_ms=_number(values.get("next_attempt_ms")),
            delivered=_number(values.get("delivered")),
            owner=values.get("owner", ""),
        )

    async def names(self) -> list[str]:
        with unavailable_when_redis_is("the change log"):
            members = await self._redis.smembers(self.keys.subscribers)
        return sorted(as_text(member) for member in members)

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
        return as_text(parked)

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
        return int(answer[0]), [as_text(item) for item in answer[1:]]

    async def next_replay(self, name: str) -> ReplayItem | None:
        with unavailable_when_redis_is("the change log"):
            head = await self._redis.lindex(self.keys.replay(name), 0)
        if head is None:
            return None
        parts = as_text(head).split(" ")
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
    values = _text_fields(fields)
    return DeadLetterRecord(
        id=as_text(entry_id),
        delivery_id=values.get("delivery_id", ""),
        first=values.get("first", ""),
        last=values.get("last", ""),
        count=_number(values.get("count")),
        attempts=_number(values.get("attempts")),
        error=values.get("error", ""),
        park_ms=_number(values.get("park_ms")),
    )
