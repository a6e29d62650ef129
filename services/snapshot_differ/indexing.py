"""Keeping the search index in step with one run, as the run goes.

    indexer = await RunIndexer.start(SearchIndex(redis), redis, shard, clock)
    await indexer.file(changed, read)       # each batch, once the notifier holds its events
    await indexer.remove(deleted_ids)       # once the notifier holds the DELETED events
    await indexer.committed(base, run_id, complete=True)
    await indexer.close()                   # always, at the end of the run

A batch's profiles are filed as soon as the notifier has accepted its events,
so search never shows content whose event is not out yet, and the indexing
keeps pace with Graph's answers instead of piling up at the commit. Filing
runs beside the run's next batch (one batch at a time), timed as the "index"
stage. It is idempotent: a run that dies and runs again files the same
profiles again.

A shard whose profiles the index has never seen (a new index, or a Redis
that lost it) is filed whole: every profile the run reads, not only the
changed ones. With several shards each one seeds its own part.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from services.search.index import SearchIndex
from services.snapshot_differ.baseline import Baseline
from services.snapshot_differ.stages import StageClock

__all__ = ["RunIndexer"]

SEEDED_PREFIX = "profilesync:search:seeded:"


class RunIndexer:
    def __init__(
        self,
        index: SearchIndex,
        redis: aioredis.Redis,
        shard: str,
        clock: StageClock,
        *,
        seeding: bool,
    ) -> None:
        self._index = index
        self._redis = redis
        self._shard = shard
        self._clock = clock
        # The index lacks this shard's profiles: file everything read.
        self.seeding = seeding
        self._filing: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, index: SearchIndex, redis: aioredis.Redis, shard: str, clock: StageClock
    ) -> RunIndexer:
        seeded = await redis.exists(SEEDED_PREFIX + shard)
        return cls(index, redis, shard, clock, seeding=not seeded or not await index.exists())

    async def file(self, changed: Sequence[dict[str, Any]], read: Sequence[dict[str, Any]]) -> None:
        """Files a batch (its changed profiles, or every profile read while
        seeding) beside the caller's next batch; waits for the previous one."""
        await self.drain()
        upserts = list(read if self.seeding else changed)
        if upserts:
            self._filing = asyncio.create_task(self._apply(upserts, []))

    async def remove(self, user_ids: Sequence[str]) -> None:
        await self.drain()
        if user_ids:
            await self._apply([], list(user_ids))

    async def drain(self) -> None:
        """Waits until every batch handed over is filed (raising its error)."""
        if self._filing is not None:
            filing, self._filing = self._filing, None
            await filing

    async def close(self) -> None:
        """Stops filing that a failed run left under way."""
        if self._filing is not None:
            self._filing.cancel()
            await asyncio.gather(self._filing, return_exceptions=True)
            self._filing = None

    async def committed(self, base: Baseline, run_id: str, *, complete: bool) -> None:
        """After the commit: the shard counts as filed from now on.

        Safe to lose (a crash before it makes the next run seed again). Users a
        seeding run kept without reading them (a partial run), or an index lost
        during the run, are filed from the committed baseline here: a rare,
        whole-shard pass.
        """
        await self.drain()
        if (self.seeding and not complete) or not await self._index.exists():
            async for user_ids in base.user_id_chunks():
                profiles = await base.profiles(user_ids)
                await self._apply(list(profiles.values()), [])
        await self._redis.set(SEEDED_PREFIX + self._shard, run_id)

    async def _apply(self, upserts: list[dict[str, Any]], deletes: list[str]) -> None:
        started = time.perf_counter()
        try:
            await self._index.apply(upserts, deletes)
        finally:
            self._clock.add("index", time.perf_counter() - started)
