"""Run records: what `GET /v1/syncs/{id}` shows, kept in Redis.

    profilesync:runs                      sorted set run id -> start time (ms)
    {profilesync:runs}:run:<id>           the SyncRun message (serialized)
    {profilesync:runs}:open:<shard>       set of run ids still RUNNING or HELD_FOR_DELETES

The braces put every key in the slot of `profilesync:runs` (a key without
braces hashes whole), so saving a record stays one transaction and the
newest records one MGET on a Redis Cluster too. Records written before that
layout (`profilesync:run:<id>`, `profilesync:runs:open:<shard>`) are still
read, and go when they are trimmed or closed.

A process killed mid-run cannot record its own end. The open set lets the
next run of the shard close such records (FAILED, "interrupted"), and a
RUNNING record whose shard lock is no longer held by it is shown as
interrupted right away.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from profilesync.v1 import differ_pb2
from services.common.errors import NotFound
from services.common.redis_client import as_bytes, as_text
from services.common.redis_keys import shard_label
from services.snapshot_differ.lock import lock_key

__all__ = ["INTERRUPTED", "RunRecords", "shard_label"]

INDEX_KEY = "profilesync:runs"
RECORD_PREFIX = "{profilesync:runs}:run:"
OPEN_PREFIX = "{profilesync:runs}:open:"
# The layout before hash tags; read, never written.
LEGACY_RECORD_PREFIX = "profilesync:run:"
LEGACY_OPEN_PREFIX = "profilesync:runs:open:"
# Records kept; older ones are trimmed when a run is saved.
KEEP_RUNS = 1000
INTERRUPTED = "interrupted: the differ process ended before the run finished"
_OPEN_STATES = (differ_pb2.RUNNING, differ_pb2.HELD_FOR_DELETES)


def _label(run: differ_pb2.SyncRun) -> str:
    return shard_label(run.shard_index, run.shard_count)


class RunRecords:
    """records = RunRecords(redis); await records.save(run); await records.get(run_id)"""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def save(self, run: differ_pb2.SyncRun) -> None:
        score = run.start_time.ToMilliseconds()
        open_key = OPEN_PREFIX + _label(run)
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(RECORD_PREFIX + run.run_id, run.SerializeToString())
            tx.zadd(INDEX_KEY, {run.run_id: score})
            if run.state in _OPEN_STATES:
                tx.sadd(open_key, run.run_id)
            else:
                tx.srem(open_key, run.run_id)
            await tx.execute()
        overflow = await self.redis.zcard(INDEX_KEY) - KEEP_RUNS
        if overflow > 0:
            old = [as_text(r) for r in await self.redis.zrange(INDEX_KEY, 0, overflow - 1)]
            await self.redis.delete(*[RECORD_PREFIX + r for r in old])
            # One key per command: legacy keys are in slots of their own.
            for run_id in old:
                await self.redis.delete(LEGACY_RECORD_PREFIX + run_id)
            await self.redis.zrem(INDEX_KEY, *old)

    async def find(self, run_id: str) -> differ_pb2.SyncRun | None:
        raw = await self.redis.get(RECORD_PREFIX + run_id)
        if raw is None:
            raw = await self.redis.get(LEGACY_RECORD_PREFIX + run_id)
        return None if raw is None else differ_pb2.SyncRun.FromString(as_bytes(raw))

    async def get(self, run_id: str) -> differ_pb2.SyncRun:
        run = await self.find(run_id)
        if run is None:
            raise NotFound(f"sync run {run_id!r} not found")
        return (await self._live([run]))[0]

    async def newest(self, limit: int) -> list[differ_pb2.SyncRun]:
        run_ids = await self.redis.zrevrange(INDEX_KEY, 0, limit - 1)
        if not run_ids:
            return []
        ids = [as_text(r) for r in run_ids]
        raws = await self.redis.mget([RECORD_PREFIX + run_id for run_id in ids])
        runs = []
        for run_id, raw in zip(ids, raws, strict=True):
            if raw is None:
                raw = await self.redis.get(LEGACY_RECORD_PREFIX + run_id)
            if raw is not None:
                runs.append(differ_pb2.SyncRun.FromString(as_bytes(raw)))
        return await self._live(runs)

    async def _live(self, runs: list[differ_pb2.SyncRun]) -> list[differ_pb2.SyncRun]:
        """RUNNING records whose process is gone (the shard lock is not theirs) read as FAILED."""
        running = [run for run in runs if run.state == differ_pb2.RUNNING]
        if not running:
            return runs
        # Shards' locks are in different slots: one GET each, pipelined.
        async with self.redis.pipeline(transaction=False) as pipe:
            for run in running:
                pipe.get(lock_key(_label(run)))
            holders = await pipe.execute()
        for run, holder in zip(running, holders, strict=True):
            if holder is None or as_text(holder) != run.run_id:
                run.state = differ_pb2.FAILED
                run.error = INTERRUPTED
        return runs

    async def close_stale(self, shard: str, current: str, *, supersede_held: bool) -> None:
        """Called by a new run holding the shard lock: no other run of the shard
        can still be running, and (unless `supersede_held` is false, for dry
        runs) a held run can no longer be approved."""
        open_ids = {as_text(r) for r in await self.redis.smembers(OPEN_PREFIX + shard)}
        legacy = {as_text(r) for r in await self.redis.smembers(LEGACY_OPEN_PREFIX + shard)}
        if legacy:
            # Taken over into the open set of the current layout.
            await self.redis.sadd(OPEN_PREFIX + shard, *legacy)
            await self.redis.delete(LEGACY_OPEN_PREFIX + shard)
        for run_id in sorted(open_ids | legacy):
            if run_id == current:
                continue
            run = await self.find(run_id)
            if run is None:
                await self.redis.srem(OPEN_PREFIX + shard, run_id)
                continue
            if run.state == differ_pb2.RUNNING:
                run.error = INTERRUPTED
            elif run.state == differ_pb2.HELD_FOR_DELETES and supersede_held:
                run.error = (
                    f"superseded by run {current} before its deletions were approved; "
                    f"nothing of it was committed ({run.error})"
                )
            else:
                continue
            run.state = differ_pb2.FAILED
            if not run.HasField("end_time"):
                run.end_time.GetCurrentTime()
            await self.save(run)
