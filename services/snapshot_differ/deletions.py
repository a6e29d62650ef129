"""Deletions: users in the baseline that a complete run did not see.

    found = await list_vanished(base, draft)           # into the draft's `deletes` set
    reason = DeletePolicy(20.0, 500).hold_reason(found, await base.size())
    if reason is None:
        await publish_deletions(base, draft, sink, run_id)

Only a complete enumeration with no failed profile may delete (the caller
checks that). More deletions than the policy allows hold the run until
someone approves; the list waits in Redis, so approving needs no re-read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from profilesync.v1 import notifier_pb2
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.changes import build_event
from services.snapshot_differ.publisher import EventSink
from services.snapshot_differ.snapshot import SnapshotWriter

__all__ = ["DeletePolicy", "carry_unseen", "list_vanished", "publish_deletions"]

CHUNK = 1000
#: The `reason` of a DELETED event for a user no longer listed by Graph.
NOT_LISTED = (
    "no longer listed by Microsoft Graph: deleted from the directory, or no longer among "
    "the users synced (SYNC_USERS: a licence removed, a guest or a disabled account left out)"
)


@dataclass(frozen=True)
class DeletePolicy:
    """A run is held when it would delete more than `max_count` users, or
    more than `max_percent` percent of the shard's users."""

    max_percent: float
    max_count: int

    def hold_reason(self, deletes: int, baseline_users: int) -> str | None:
        if deletes <= 0:
            return None
        percent = 100.0 * deletes / baseline_users if baseline_users else 100.0
        what = f"the run would delete {deletes} of {baseline_users} users ({percent:.1f}%)"
        if deletes > self.max_count:
            return f"{what}, more than DELETE_THRESHOLD_COUNT ({self.max_count})"
        if percent > self.max_percent:
            return f"{what}, more than DELETE_THRESHOLD_PERCENT ({self.max_percent:g}%)"
        return None


async def list_vanished(base: Baseline, draft: BaselineDraft) -> int:
    """Notes every unseen baseline user in the draft's `deletes` set; returns how many."""
    if not base.exists:
        return 0
    # The baseline's ids minus those seen, into a sorted set, inside Redis. One
    # command at a time: redis-py's cluster pipelines refuse these multi-key
    # commands even within one slot; a scratch key a crash leaves behind is a
    # draft key, dropped with the draft.
    scratch = draft.key("deletes") + ":set"
    await base.redis.sdiffstore(scratch, [base.key("ids"), draft.key("seen")])
    await base.redis.zunionstore(draft.key("deletes"), {scratch: 0})
    await base.redis.delete(scratch)
    return await draft.count("deletes")


async def carry_unseen(base: Baseline, draft: BaselineDraft, writer: SnapshotWriter) -> int:
    """An incomplete run keeps every user it did not see as committed: into
    the snapshot too, so the snapshot stays a full picture of the baseline."""
    carried = 0
    async for chunk in base.user_id_chunks(CHUNK):
        flags = await base.redis.smismember(draft.key("seen"), chunk)
        gone = [uid for uid, seen in zip(chunk, flags, strict=True) if not seen]
        carried += await carry(base, gone, writer)
    return carried


async def carry(base: Baseline, user_ids: list[str], writer: SnapshotWriter) -> int:
    """Writes these users' committed profiles into the snapshot."""
    if not user_ids:
        return 0
    profiles = await base.profiles(user_ids)
    digests = await base.digests(user_ids)
    carried = 0
    for uid, old in zip(user_ids, digests, strict=True):
        if old and uid in profiles:
            await writer.add(profiles[uid], old)
            carried += 1
    return carried


def _with_reason(event: notifier_pb2.ChangeEvent, reason: str) -> notifier_pb2.ChangeEvent:
    event.reason = reason[:1024]
    return event


async def publish_deletions(
    base: Baseline, draft: BaselineDraft, sink: EventSink, run_id: str
) -> int:
    """One DELETED event per noted user (ids derived from the committed
    digest and generation, so a repeat after a crash yields the same ids).
    The commit removes them from the baseline. Returns how many."""
    deleted = 0
    async for chunk in draft.members("deletes", CHUNK):
        befores = await base.profiles(chunk)
        old_digests = await base.digests(chunk)
        no_profile = await draft.no_profile_reasons(chunk)
        now = dt.datetime.now(dt.UTC)
        events = [
            _with_reason(
                build_event(
                    run_id=run_id,
                    user_id=uid,
                    before=befores.get(uid, {"id": uid}),
                    after=None,
                    before_digest=old or "",
                    after_digest="",
                    origin=notifier_pb2.SHAREPOINT,
                    detect_time=now,
                    before_generation=base.generation or "",
                ),
                f"no SharePoint profile any more: {no_profile[uid]}"
                if uid in no_profile
                else NOT_LISTED,
            )
            for uid, old in zip(chunk, old_digests, strict=True)
        ]
        await sink.add(events)
        deleted += len(chunk)
    return deleted
