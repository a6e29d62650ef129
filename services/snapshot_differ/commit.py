"""The commit step of a run, in one place.

    await commit_run(context, reader, hooks=[...], keep_snapshots=10)

It runs only after the notifier accepted every event of the run, in this order:

1. the commit hooks, in order: work that must be done for every committed
   change, such as updating the search index. A hook reads what changed
   from the context. It must be idempotent: if the process dies after a hook
   but before step 3, the rerun finds the same changes and calls it again;
2. LATEST.json points at the run's snapshot (so a Redis rebuilt after this
   starts from it; its events are all out already);
3. the baseline pointer switches to the run's draft, in one transaction —
   the commit point;
4. housekeeping that is safe to lose: LOB-written digests the run matched
   are forgotten, scratch keys dropped, old snapshots pruned.

To add a hook, pass it in `SyncRunner(..., commit_hooks=[...])`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from profilesync.v1 import differ_pb2
from services.common.redis_keys import LOB_WRITES_KEY
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.crashpoints import crash_point
from services.snapshot_differ.retention import prune_snapshots
from services.snapshot_differ.snapshot import SnapshotReader

__all__ = ["CommitContext", "CommitHook", "commit_run"]

# Forget a LOB-written digest only if it is still the one the run saw: the LOB
# app may have written again since.
_FORGET_LOB_WRITES = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 0
"""


@dataclass
class CommitContext:
    """What a commit hook may read: the run, and the changes it commits.

    async for ids in context.changed_user_ids():   # created or updated
        profiles = await context.profiles(ids)     # their new content
    async for ids in context.deleted_user_ids(): ...
    """

    run: differ_pb2.SyncRun
    shard: str
    base: Baseline
    draft: BaselineDraft

    @property
    def redis(self) -> aioredis.Redis:
        return self.draft.redis

    def changed_user_ids(self, chunk: int = 1000) -> AsyncIterator[list[str]]:
        return self.draft.members("changed", chunk)

    def deleted_user_ids(self, chunk: int = 1000) -> AsyncIterator[list[str]]:
        return self.draft.members("deletes", chunk)

    async def profiles(self, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The committed-to-be content of these users (absent: deleted)."""
        view = Baseline(self.redis, self.shard, self.draft.generation)
        return await view.profiles(user_ids)


CommitHook = Callable[[CommitContext], Awaitable[None]]


async def _forget_lob_writes(context: CommitContext) -> None:
    committed = Baseline(context.redis, context.shard, context.draft.generation)
    async for chunk in context.draft.members("lob"):
        digests = await committed.digests(chunk)
        pairs = [item for uid, d in zip(chunk, digests, strict=True) if d for item in (uid, d)]
        if pairs:
            await context.redis.eval(_FORGET_LOB_WRITES, 1, LOB_WRITES_KEY, *pairs)


async def commit_run(
    context: CommitContext,
    reader: SnapshotReader,
    *,
    hooks: Sequence[CommitHook],
    keep_snapshots: int,
    protect: Collection[str] = (),
) -> None:
    for hook in hooks:
        await hook(context)
    if context.run.snapshot:
        await asyncio.to_thread(reader.mark_latest, context.run.snapshot)
    crash_point("latest-marked")
    await context.draft.switch()
    crash_point("switched")
    await _forget_lob_writes(context)
    crash_point("lob-forgotten")
    await context.draft.drop_scratch()
    await asyncio.to_thread(
        prune_snapshots,
        reader.store,
        reader.prefix,
        keep=keep_snapshots,
        protect={context.run.run_id, *protect},
    )
    crash_point("pruned")
