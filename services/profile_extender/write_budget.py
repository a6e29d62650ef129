"""Graph's write quota, shared by every extender replica through Redis.

Graph allows an app 3,000 writes per 150 s in a tenant ("Microsoft Graph
service-specific throttling limits", identity and access,
https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits).
A LOB app importing edits in bulk would meet Graph's 429s after its writes
were accepted; instead each write takes a place in a sliding window kept in
Redis before it is sent, and one that finds the window full is refused at
once, with the seconds until a place frees up.

    writes = WriteBudget(redis, key, writes_per_window=2910)
    await writes.admit()    # or RateLimited, carrying retry_after_seconds

The window is a log of the writes' times (a sorted set of at most the quota's
size), so it is exact: no 150 s ever holds more than the budget, and a burst
up to the budget goes at once. If Redis is unreachable the replica keeps the
same log in memory (and logs it).
"""

from __future__ import annotations

import collections
import logging
import math
import time
import uuid

import redis.asyncio as aioredis
from prometheus_client import Counter

from services.common.errors import RateLimited
from services.common.lua_scripts import LuaScript

__all__ = ["WRITE_WINDOW_SECONDS", "WriteBudget", "write_budget_key"]

log = logging.getLogger(__name__)

REFUSED = Counter(
    "profilesync_graph_writes_refused_total",
    "Profile updates refused because Graph's write quota (shared by all replicas) was spent",
)

WRITE_WINDOW_SECONDS = 150.0
REDIS_RETRY_SECONDS = 5.0

# The window (lua/admit_write.lua: its header names its keys, arguments and answer).
_ADMIT = LuaScript("services.profile_extender", "admit_write.lua")


def write_budget_key(tenant_id: str, client_id: str) -> str:
    """The Redis key of the write log: Graph's write quota is per app per tenant."""
    return f"profilesync:graph-writes:{tenant_id}:{client_id}"


class WriteBudget:
    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        *,
        writes_per_window: int,
        window_seconds: float = WRITE_WINDOW_SECONDS,
    ) -> None:
        self._redis = redis
        self._key = key
        self.writes_per_window = writes_per_window
        self.window_seconds = window_seconds
        self._script = _ADMIT.register(redis)
        self._local: collections.deque[float] = collections.deque()
        self._redis_down_until = 0.0

    async def admit(self) -> None:
        """Takes a place for one write, or raises RateLimited saying when to retry."""
        wait = await self._wait()
        if wait <= 0:
            return
        REFUSED.inc()
        seconds = math.ceil(wait)
        raise RateLimited(
            f"Graph's write quota for this app ({self.writes_per_window} writes per "
            f"{self.window_seconds:.0f} s, shared by all replicas) is spent; "
            f"retry in {seconds} s",
            retry_after_seconds=seconds,
        )

    async def _wait(self) -> float:
        if time.monotonic() >= self._redis_down_until:
            args: list[str | int] = [
                f"{self.window_seconds * 1e6:.0f}",
                self.writes_per_window,
                uuid.uuid4().hex,
            ]
            try:
                wait_us = float(await self._script(keys=[self._key], args=args))
            except aioredis.RedisError as error:
                log.warning("Redis unreachable (%s): pacing this replica's writes alone", error)
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            else:
                return wait_us / 1e6
        return self._local_wait()

    def _local_wait(self) -> float:
        now = time.monotonic()
        while self._local and self._local[0] <= now - self.window_seconds:
            self._local.popleft()
        if len(self._local) < self.writes_per_window:
            self._local.append(now)
            return 0.0
        freeing = self._local[len(self._local) - self.writes_per_window]
        return max(0.001, freeing + self.window_seconds - now)
