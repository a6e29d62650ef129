"""One run at a time per shard: a Redis lock with a TTL, renewed while held.

If the holder dies, the lock expires after its TTL and the next run may
start; a holder that lost its lock (expired while paused) finds out when it
renews and stops instead of committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis

from services.common.cancellation import stop_if_cancelled
from services.common.lua_scripts import LuaScript

__all__ = ["LockLost", "ShardLock", "lock_key"]

log = logging.getLogger(__name__)

# Take a free lock, or one reserved under our own name (lua/acquire_lock.lua).
_ACQUIRE = LuaScript("services.snapshot_differ", "acquire_lock.lua")
# Extend or release only a lock that is still ours.
_RENEW = LuaScript("services.common", "renew_if_owner.lua")
_RELEASE = LuaScript("services.common", "release_if_owner.lua")


def lock_key(shard: str) -> str:
    return f"profilesync:lock:{shard}"


class LockLost(RuntimeError):
    """The lock expired or was taken while this run held it."""


class ShardLock:
    """lock = ShardLock(redis, "s0of1", owner=run_id, ttl_seconds=60)
    holder = await lock.acquire()     # None if acquired, else the holder's id
    ... lock.check() ...              # raises LockLost if renewal failed
    await lock.release()
    """

    def __init__(self, redis: aioredis.Redis, shard: str, owner: str, ttl_seconds: int) -> None:
        self.redis = redis
        self.key = lock_key(shard)
        self.owner = owner
        self.ttl_ms = ttl_seconds * 1000
        self._renewer: asyncio.Task[None] | None = None
        self._lost = False
        self._acquire = _ACQUIRE.register(redis)
        self._renew = _RENEW.register(redis)
        self._release = _RELEASE.register(redis)

    async def acquire(self) -> str | None:
        """Takes the lock and keeps renewing it; returns None on success or
        the current holder's id."""
        if await self._acquire(keys=[self.key], args=[self.owner, self.ttl_ms]):
            self._renewer = asyncio.create_task(self._renew_forever())
            return None
        holder = await self.redis.get(self.key)
        return holder.decode() if isinstance(holder, bytes) else str(holder or "")

    async def reserve(self, seconds: int) -> str | None:
        """Takes the lock for `seconds` without renewing it, for a run that a
        Job will start; the Job's process takes it over with `acquire()`.
        Returns None on success or the current holder's id."""
        if await self.redis.set(self.key, self.owner, nx=True, px=seconds * 1000):
            return None
        holder = await self.redis.get(self.key)
        return holder.decode() if isinstance(holder, bytes) else str(holder or "")

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                renewed = await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms])
            except aioredis.RedisError as error:
                # Keep trying until the TTL runs out; Redis may be restarting.
                log.warning("could not renew the sync lock: %s", error)
                stop_if_cancelled()
                continue
            stop_if_cancelled()
            if not renewed:
                self._lost = True
                log.error("sync lock %s lost", self.key)
                return

    def check(self) -> None:
        if self._lost:
            raise LockLost(f"lost the sync lock {self.key}; another run may have started")

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        with contextlib.suppress(aioredis.RedisError):
            await self._release(keys=[self.key], args=[self.owner])
