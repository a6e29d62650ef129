"""The compare stage: a batch of freshly read profiles against the baseline.

    comparer = BatchComparer(ctx)                # the run's context (context.py)
    changed = await comparer.compare(profiles)   # a list of profile dicts, e.g. 1,000

For each batch: one pipelined round trip reads the baseline digests and the
LOB-written digests and marks the users as seen; only the changed users'
previous profiles are fetched (a second round trip), turned into change
events with field-level differences, staged in the draft baseline and handed
to the sink. Nothing is kept between batches, so memory does not grow with
the tenant.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from profilesync.v1 import notifier_pb2
from services.common.profiles import digest
from services.common.redis_client import as_text
from services.common.redis_keys import LOB_WRITES_KEY
from services.snapshot_differ.changes import build_event
from services.snapshot_differ.context import RunContext
from services.snapshot_differ.crashpoints import crash_point

__all__ = ["BatchComparer"]


class BatchComparer:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.base = ctx.base
        self.draft = ctx.draft
        self.redis = ctx.base.redis
        self.counts = ctx.record.counts

    async def compare(self, batch: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Compares, stages and hands the events to the sink; returns the
        profiles that changed."""
        if not batch:
            return []
        with self.ctx.clock.stage("compare"):
            events, changed = await self._compare(batch)
        crash_point("compared")
        if events:
            await self.ctx.sink.add(events)
        return changed

    async def _compare(
        self, batch: Sequence[dict[str, Any]]
    ) -> tuple[list[notifier_pb2.ChangeEvent], list[dict[str, Any]]]:
        ids = [str(profile["id"]) for profile in batch]
        new_digests = [digest(profile) for profile in batch]
        async with self.redis.pipeline(transaction=False) as pipe:
            if self.base.exists:
                pipe.hmget(self.base.key("digests"), ids)
            pipe.sadd(self.draft.key("seen"), *ids)
            pipe.hmget(LOB_WRITES_KEY, ids)
            replies = await pipe.execute()
        raw_old = replies[0] if self.base.exists else [None] * len(ids)
        old_digests = [as_text(v) if v is not None else None for v in raw_old]
        lob_digests = [as_text(v) if v is not None else None for v in replies[-1]]

        if self.ctx.writer is not None:
            with self.ctx.clock.stage("snapshot"):
                for profile, new in zip(batch, new_digests, strict=True):
                    await self.ctx.writer.add(profile, new)
        self.counts.profiles += len(batch)

        changed: list[tuple[str, dict[str, Any], str, str | None, bool]] = []
        lob_seen: list[str] = []
        for uid, profile, new, old, lob in zip(
            ids, batch, new_digests, old_digests, lob_digests, strict=True
        ):
            from_lob = lob is not None and lob == new
            if from_lob:
                # Forgotten at commit, whether or not this run saw the change:
                # an unchanged profile at the LOB-written digest means the LOB
                # write was already delivered (or changed nothing).
                lob_seen.append(uid)
            if new != old:
                changed.append((uid, profile, new, old, from_lob))
        self.counts.unchanged += len(batch) - len(changed)
        await self.draft.note("lob", lob_seen)
        if not changed:
            return [], []

        befores = await self.base.profiles([uid for uid, _, _, old, _ in changed if old])
        now = dt.datetime.now(dt.UTC)
        events = []
        for uid, profile, new, old, from_lob in changed:
            before = befores.get(uid) if old else None
            if before is None:
                self.counts.created += 1
            else:
                self.counts.updated += 1
            events.append(
                build_event(
                    run_id=self.ctx.run_id,
                    user_id=uid,
                    before=before,
                    after=profile,
                    before_digest=old or "",
                    after_digest=new,
                    origin=notifier_pb2.LOB if from_lob else notifier_pb2.SHAREPOINT,
                    detect_time=now,
                    # The committed generation, not this run's draft: a rerun
                    # after a crash compares against the same one.
                    before_generation=self.base.generation or "",
                )
            )
        await self.draft.put((uid, new, profile) for uid, profile, new, _, _ in changed)
        crash_point("staged")
        return events, [profile for _, profile, _, _, _ in changed]
