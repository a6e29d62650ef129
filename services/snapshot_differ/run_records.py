"""Run records: what `GET /v1/syncs/{id}` shows, kept in Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from profilesync.v1 import differ_pb2
from services.common.errors import NotFound
from services.common.redis_client import as_bytes, as_text

__all__ = ["RunRecords"]

INDEX_KEY = "profilesync:runs"
RECORD_PREFIX = "profilesync:run:"
# Records kept; older ones are trimmed when a run is saved.
KEEP_RUNS = 1000


class RunRecords:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def save(self, run: differ_pb2.SyncRun) -> None:
        score = run.start_time.ToMilliseconds()
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(RECORD_PREFIX + run.run_id, run.SerializeToString())
            tx.zadd(INDEX_KEY, {run.run_id: score})
            await tx.execute()
        overflow = await self.redis.zcard(INDEX_KEY) - KEEP_RUNS
        if overflow > 0:
            old = await self.redis.zrange(INDEX_KEY, 0, overflow - 1)
            await self.redis.delete(*[RECORD_PREFIX + as_text(r) for r in old])
            await self.redis.zrem(INDEX_KEY, *old)

    async def get(self, run_id: str) -> differ_pb2.SyncRun:
        raw = await self.redis.get(RECORD_PREFIX + run_id)
        if raw is None:
            raise NotFound(f"sync run {run_id!r} not found")
        return differ_pb2.SyncRun.FromString(as_bytes(raw))

    async def newest(self, limit: int) -> list[differ_pb2.SyncRun]:
        run_ids = await self.redis.zrevrange(INDEX_KEY, 0, limit - 1)
        if not run_ids:
            return []
        raws = await self.redis.mget([RECORD_PREFIX + as_text(r) for r in run_ids])
        return [differ_pb2.SyncRun.FromString(as_bytes(raw)) for raw in raws if raw is not None]
