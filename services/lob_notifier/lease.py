"""A lease in Redis: at most one holder at a time, lost unless renewed.

    lease = Lease(redis, "{profilesync:changes}:sub:crm:lease", owner="pod-a-17", ttl_seconds=15)
    if await lease.acquire():
        renewing = asyncio.create_task(lease.keep_renewed())   # ends when the lease is lost
        ... work while lease.held ...
        await lease.release()

The holder renews every third of the TTL. It treats the lease as lost as
soon as a renewal is refused, or when it could not renew before the TTL ran
out (say Redis was unreachable): from then on another replica may hold it.
Writes that must only come from the holder check the lease in the same Lua
script (lua/lease_held.lua), so a holder that lost the lease mid-request cannot
record anything afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis

from services.common.cancellation import stop_if_cancelled
from services.common.errors import Unavailable
from services.common.lua_scripts import LuaScript
from services.common.redis_client import unavailable_when_redis_is

__all__ = ["Lease"]

log = logging.getLogger(__name__)

# Renewed and released only by its holder, like any lock.
_RENEW = LuaScript("services.common", "renew_if_owner.lua")
_RELEASE = LuaScript("services.common", "release_if_owner.lua")


class Lease:
    def __init__(self, redis: aioredis.Redis, key: str, *, owner: str, ttl_seconds: float) -> None:
        self._redis = redis
        self.key = key
        self.owner = owner
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._valid_until = 0.0
        self._lost = asyncio.Event()
        self._renew = _RENEW.register(redis)
        self._release = _RELEASE.register(redis)

    @property
    def held(self) -> bool:
        return not self._lost.is_set() and time.monotonic() < self._valid_until

    @property
    def lost(self) -> asyncio.Event:
        return self._lost

    async def acquire(self) -> bool:
        started = time.monotonic()
        with unavailable_when_redis_is("the change log"):
            taken = await self._redis.set(self.key, self.owner, nx=True, px=self._ttl_ms)
        if taken:
            self._valid_until = started + self._ttl_ms / 1000
            self._lost.clear()
        return bool(taken)

    async def renew(self) -> bool:
        started = time.monotonic()
        with unavailable_when_redis_is("the change log"):
            renewed = await self._renew(keys=[self.key], args=[self.owner, self._ttl_ms])
        if renewed:
            self._valid_until = started + self._ttl_ms / 1000
        else:
            self._lost.set()
        return bool(renewed)

    async def keep_renewed(self) -> None:
        """Renews until the lease is lost (then sets `lost` and returns)."""
        interval = self._ttl_ms / 3000
        while not self._lost.is_set():
            await asyncio.sleep(interval)
            try:
                if not await self.renew():
                    log.warning("lease %s was taken over", self.key)
                    return
            except Unavailable:
                if time.monotonic() >= self._valid_until:
                    log.warning("lease %s expired while Redis was unreachable", self.key)
                    self._lost.set()
                    return
            stop_if_cancelled()

    async def release(self) -> None:
        """Gives the lease up at once (another replica need not wait for the TTL)."""
        self._lost.set()
        try:
            with unavailable_when_redis_is("the change log"):
                await self._release(keys=[self.key], args=[self.owner])
        except Unavailable:
            pass  # it expires by itself
