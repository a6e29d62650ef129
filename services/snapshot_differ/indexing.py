"""Keeping the search index in step with a run, as the run goes.

    indexer = RunIndexer(SearchIndex(redis), redis)
    await indexer.start(shard)                  # under the shard lock
    await indexer.file(changed, read)           # each batch, once the notifier holds its events
    await indexer.remove(deleted_ids)           # once the notifier holds the DELETED events
    await indexer.committed(base, complete=True)

A batch's profiles are filed as soon as the notifier has accepted its events,
so search never shows content whose event is not out yet, and the indexing
keeps pace with Graph's answers instead of piling up at the commit. Filing
is idempotent: a run that dies and runs again files the same profiles again.

A shard whose profiles the index has never seen (a new index, or a Redis
that lost it) is filed whole: every profile the run reads, not only the
changed ones. With several shards each one seeds its own part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from services.search.index import SearchIndex
from services.snapshot_differ.baseline import Baseline

__all__ = ["RunIndexer"]

SEEDED_PREFIX = "profilesync:search:seeded:"


class RunIndexer:
    def __init__(self, index: SearchIndex, redis: aioredis.Redis) -> None:
        self._index = index
        self._redis = redis
        self._shard = ""
        # The index lacks this shard's profiles: file everything read.
        self.seeding = False

    async def start(self, shard: str) -> None:
        self._shard = shard
        seeded = await self._redis.exists(SEEDED_PREFIX + shard)
        self.seeding = not seeded or not await self._index.exists()

    async def file(self, changed: Sequence[dict[str, Any]], read: Sequence[dict[str, Any]]) -> None:
        """Files a batch: its changed profiles, or every profile read while seeding."""
        upserts = read if self.seeding else changed
        if upserts:
            await self._index.apply(list(upserts), [])

    async def remove(self, user_ids: Sequence[str]) -> None:
        if user_ids:
            await self._index.apply([], list(user_ids))

    async def committed(self, base: Baseline, run_id: str, *, complete: bool) -> None:
        """After the commit: the shard counts as filed from now on.

        Safe to lose (a crash before it makes the next run seed again). Users a
        seeding run kept without reading them (a partial run), or an index lost
        during the run, are filed from the committed baseline here: a rare,
        whole-shard pass.
        """
        if (self.seeding and not complete) or not await self._index.exists():
            async for user_ids in base.user_id_chunks():
                profiles = await base.profiles(user_ids)
                await self._index.apply(list(profiles.values()), [])
        await self._redis.set(SEEDED_PREFIX + self._shard, run_id)
