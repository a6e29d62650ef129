"""Approving a run held for deletes (ApproveDeletes).

    record = await approvable(records, redis, run_id)     # before the lock
    held = await still_held(redis, shard, run_id)         # under the shard lock
    await release_deletions(ctx, keep_snapshots=10)       # publish, then commit

A run that found more vanished users than the delete threshold allows stops
before their DELETED events, keeping its draft (held.py). Approving it
publishes those events and commits that draft, as long as no later run of
the shard superseded it or committed after it. An approval that died midway
(its record reads FAILED, the held draft is still there) can be approved
again: the events it repeats carry the same ids, which the notifier drops.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from profilesync.v1 import differ_pb2
from services.common.errors import FailedPrecondition
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.context import RunContext
from services.snapshot_differ.crashpoints import crash_point
from services.snapshot_differ.deletions import publish_deletions
from services.snapshot_differ.held import HeldRun
from services.snapshot_differ.run_records import RunRecords, shard_label

__all__ = ["approvable", "release_deletions", "still_held"]

log = logging.getLogger(__name__)


async def approvable(records: RunRecords, redis: aioredis.Redis, run_id: str) -> differ_pb2.SyncRun:
    """The record of a run that may be approved; FailedPrecondition saying why
    not otherwise."""
    record = await records.get(run_id)
    if record.dry_run:
        raise FailedPrecondition(
            f"run {run_id} was a dry run: it reported what it would do and holds "
            "nothing to approve; start a real run"
        )
    held = await HeldRun.load(redis, shard_label(record.shard_index, record.shard_count))
    interrupted_approval = (
        record.state == differ_pb2.FAILED and held is not None and held.run_id == run_id
    )
    if record.state != differ_pb2.HELD_FOR_DELETES and not interrupted_approval:
        raise FailedPrecondition(
            f"run {run_id} is not held for deletes (state "
            f"{differ_pb2.RunState.Name(record.state)}"
            + (f": {record.error}" if record.error else "")
            + ")"
        )
    return record


async def still_held(redis: aioredis.Redis, shard: str, run_id: str) -> HeldRun:
    """Checked again once the shard's lock is taken: the held draft is still
    this run's and still applies to the committed baseline."""
    held = await HeldRun.load(redis, shard)
    if held is None or held.run_id != run_id:
        raise FailedPrecondition(
            f"run {run_id} can no longer be approved: a later run of the shard superseded it"
        )
    base = await Baseline.load(redis, shard)
    draft_kept = await BaselineDraft(base, held.generation).exists()
    if base.generation != held.parent or not draft_kept:
        raise FailedPrecondition(
            f"run {run_id} can no longer be approved: another run committed after "
            "it; start a new run"
        )
    return held


async def release_deletions(ctx: RunContext, *, keep_snapshots: int) -> None:
    """Publishes the held draft's DELETED events, then commits the draft."""
    record = ctx.record
    with ctx.clock.stage("approve"):
        deleted = await publish_deletions(ctx.base, ctx.draft, ctx.sink, ctx.run_id)
        await ctx.sink.flush()
    crash_point("flushed")
    await ctx.unindex_deletions()
    record.counts.deleted = deleted
    record.counts.held_deletes = 0
    record.counts.events_published += ctx.sink.accepted + ctx.sink.duplicates
    record.changes_cursor = await ctx.changes_cursor()
    with ctx.clock.stage("commit"):
        await ctx.commit(keep_snapshots=keep_snapshots, complete=True)
    log.info("sync run %s approved: %d user(s) deleted", ctx.run_id, deleted)
