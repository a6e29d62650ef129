"""Keeping the search index in step with committed baselines.

The commit hook re-files only what the run changed. A shard whose profiles
the index has never seen (a new index, or a Redis that lost it) is filed
whole, from the baseline being committed; with several shards each one seeds
its own part, so no shard waits for the others.
"""

from __future__ import annotations

from services.search.index import SearchIndex
from services.snapshot_differ.baseline import Baseline
from services.snapshot_differ.commit import CommitContext, CommitHook

__all__ = ["search_index_hook"]

SEEDED_PREFIX = "profilesync:search:seeded:"


def search_index_hook(index: SearchIndex) -> CommitHook:
    """SyncRunner(..., commit_hooks=[search_index_hook(SearchIndex(redis))])"""

    async def update_index(context: CommitContext) -> None:
        seeded_key = SEEDED_PREFIX + context.shard
        if not await context.redis.exists(seeded_key) or not await index.exists():
            committed = Baseline(context.redis, context.shard, context.draft.generation)
            async for user_ids in committed.user_id_chunks():
                profiles = await committed.profiles(user_ids)
                await index.apply(list(profiles.values()), [])
            await context.redis.set(seeded_key, context.run.run_id)
            return
        async for user_ids in context.changed_user_ids():
            profiles = await context.profiles(user_ids)
            await index.apply(list(profiles.values()), [])
        async for user_ids in context.deleted_user_ids():
            await index.apply([], user_ids)

    return update_index
