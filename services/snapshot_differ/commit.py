"""The commit step of a run, in one place.

    await commit_run(record, base, draft, reader, keep_snapshots=10, confirmed=iso_time)

It runs only after the notifier accepted every event of the run (and the
search index holds the run's changes), in this order:

1. LATEST.json points at the run's snapshot and the change log's cursor
   after its events (so a Redis rebuilt after this starts from it, and a LOB
   app's bootstrap lists it and follows changes from that cursor);
2. the draft is committed (BaselineDraft.commit): the commit point is one
   transaction, then the run's changes are applied to the live baseline,
   O(changes);
3. housekeeping that is safe to lose: LOB-written digests the run matched
   are forgotten, and so are the LOB edits served to LOB reads that the run
   read again (services/profile_extender/stored_profiles.py); the draft
   dropped, old snapshots pruned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Collection

from profilesync.v1 import differ_pb2
from services.common.lua_scripts import LuaScript
from services.common.profiles import shard_of
from services.common.redis_client import as_text
from services.common.redis_keys import LOB_EDITS_KEY, LOB_WRITES_KEY
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.crashpoints import crash_point
from services.snapshot_differ.retention import prune_snapshots
from services.snapshot_differ.snapshot import SnapshotReader

__all__ = ["commit_run"]

# Forget a hash entry only if it is still the one the run saw: the LOB app may
# have written again since.
_FORGET_UNCHANGED = LuaScript("services.snapshot_differ", "forget_unchanged.lua")


async def _forget_lob_writes(base: Baseline, draft: BaselineDraft) -> None:
    forget = _FORGET_UNCHANGED.register(base.redis)
    async for chunk in draft.members("lob"):
        digests = await base.digests(chunk)
        pairs = [item for uid, d in zip(chunk, digests, strict=True) if d for item in (uid, d)]
        if pairs:
            await forget(keys=[LOB_WRITES_KEY], args=pairs)


async def _forget_lob_edits(record: differ_pb2.SyncRun, base: Baseline, confirmed: str) -> None:
    """LOB edits made before the run began: the run read them from Graph."""
    if not confirmed:
        return
    started = dt.datetime.fromisoformat(confirmed)
    pairs: list[str] = []
    async for user_id, raw in base.redis.hscan_iter(LOB_EDITS_KEY, count=1000):
        uid = as_text(user_id)
        if shard_of(uid, record.shard_count) != record.shard_index:
            continue
        written = str(json.loads(raw).get("syncedAt") or "")
        if written and dt.datetime.fromisoformat(written) < started:
            pairs += [uid, as_text(raw)]
    if pairs:
        await _FORGET_UNCHANGED.register(base.redis)(keys=[LOB_EDITS_KEY], args=pairs)


async def commit_run(
    record: differ_pb2.SyncRun,
    base: Baseline,
    draft: BaselineDraft,
    reader: SnapshotReader,
    *,
    keep_snapshots: int,
    confirmed: str = "",
    protect: Collection[str] = (),
) -> None:
    """`confirmed`: see BaselineDraft.commit."""
    if record.snapshot:
        await asyncio.to_thread(reader.mark_latest, record.snapshot, record.changes_cursor)
    crash_point("latest-marked")
    await draft.commit(confirmed)
    await _forget_lob_writes(base, draft)
    await _forget_lob_edits(record, base, confirmed)
    crash_point("lob-forgotten")
    await draft.drop()
    await asyncio.to_thread(
        prune_snapshots,
        reader.store,
        reader.prefix,
        keep=keep_snapshots,
        protect={record.run_id, *protect},
    )
    crash_point("pruned")
