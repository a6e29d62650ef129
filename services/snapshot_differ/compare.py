"""The compare stage: a batch of freshly read profiles against the baseline.

    comparer = BatchComparer(ctx)                # the run's context (context.py)
    changed = await comparer.compare(profiles)   # a list of profile dicts, e.g. 1,000
    changed = await comparer.compare(profiles, reread=True)   # a hot re-read (hot.py)

For each batch: one pipelined round trip reads the baseline digests, the
digests the run's draft already holds and the LOB-written digests, and marks
the users as seen; only the changed users' previous profiles are fetched (a
second round trip), turned into change events with field-level differences,
staged in the draft baseline and handed to the sink. Nothing is kept between
batches, so memory does not grow with the tenant.

A user the draft already holds (read earlier in this run, or carried over
from a run that died: docs/sync-runs.md, "Hot re-reads") is compared with
that state, not the baseline: the LOB app has it already. Such a follow-up
change is written ahead (`BaselineDraft.put_follow_ups`) before its event
goes out, so a rerun after a crash repeats that event and never sends a
baseline-to-now event the LOB app did not see happen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from profilesync.v1 import notifier_pb2
from services.common.profiles import digest
from services.common.redis_client import as_text
from services.common.redis_keys import LOB_WRITES_KEY
from services.snapshot_differ.changes import build_event
from services.snapshot_differ.context import RunContext
from services.snapshot_differ.crashpoints import crash_point

__all__ = ["BatchComparer"]


@dataclass(frozen=True)
class _Change:
    uid: str
    profile: dict[str, Any]
    new: str
    old: str | None  # the baseline's digest
    staged: str | None  # the draft's digest, when it holds the user
    from_lob: bool

    @property
    def previous(self) -> str | None:
        """The state the LOB app has: the draft's if it holds one, else the baseline's."""
        return self.staged if self.staged is not None else self.old


class BatchComparer:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.base = ctx.base
        self.draft = ctx.draft
        self.redis = ctx.base.redis
        self.counts = ctx.record.counts
        # The sweep's batches and the hot re-reads take turns (one run, one sink).
        self.lock = asyncio.Lock()

    async def compare(
        self, batch: Sequence[dict[str, Any]], *, reread: bool = False
    ) -> list[dict[str, Any]]:
        """Compares, stages and hands the events to the sink; returns the
        profiles that changed. A `reread` batch (users read again since the
        sweep) goes into neither the snapshot nor the profile counts."""
        if not batch:
            return []
        with self.ctx.clock.stage("compare"):
            events, changed = await self._compare(batch, reread)
        crash_point("compared")
        if events:
            await self.ctx.sink.add(events)
        return changed

    async def _compare(
        self, batch: Sequence[dict[str, Any]], reread: bool
    ) -> tuple[list[notifier_pb2.ChangeEvent], list[dict[str, Any]]]:
        ids = [str(profile["id"]) for profile in batch]
        new_digests = [digest(profile) for profile in batch]
        # A direct draft (no baseline yet) writes the live keys: nothing staged apart.
        staged_apart = self.base.exists and not self.draft.direct
        async with self.redis.pipeline(transaction=False) as pipe:
            if self.base.exists:
                pipe.hmget(self.base.key("digests"), ids)
            if staged_apart:
                pipe.hmget(self.draft.key("digests"), ids)
            pipe.sadd(self.draft.key("seen"), *ids)
            pipe.hmget(LOB_WRITES_KEY, ids)
            replies = await pipe.execute()
        raw_old = replies[0] if self.base.exists else [None] * len(ids)
        raw_staged = replies[1] if staged_apart else [None] * len(ids)
        old_digests = [as_text(v) if v is not None else None for v in raw_old]
        staged_digests = [as_text(v) if v is not None else None for v in raw_staged]
        lob_digests = [as_text(v) if v is not None else None for v in replies[-1]]

        if self.ctx.writer is not None and not reread:
            with self.ctx.clock.stage("snapshot"):
                for profile, new in zip(batch, new_digests, strict=True):
                    await self.ctx.writer.add(profile, new)
        if not reread:
            self.counts.profiles += len(batch)

        changed: list[_Change] = []
        restage: list[_Change] = []
        lob_seen: list[str] = []
        for uid, profile, new, old, staged, lob in zip(
            ids, batch, new_digests, old_digests, staged_digests, lob_digests, strict=True
        ):
            from_lob = lob is not None and lob == new
            if from_lob:
                # Forgotten at commit, whether or not this run saw the change:
                # an unchanged profile at the LOB-written digest means the LOB
                # write was already delivered (or changed nothing).
                lob_seen.append(uid)
            change = _Change(uid, profile, new, old, staged, from_lob)
            if new != change.previous:
                changed.append(change)
            elif staged is not None and new != old:
                # As the draft holds it (carried over from a run that died):
                # no event, but this run commits it.
                restage.append(change)
        if not reread:
            self.counts.unchanged += len(batch) - len(changed)
        await self.draft.note("lob", lob_seen)
        await self.draft.put((c.uid, c.new, c.profile) for c in restage)
        if not changed:
            return [], []

        firsts = [c for c in changed if c.staged is None]
        follow_ups = [c for c in changed if c.staged is not None]
        events = await self._first_events(firsts)
        if follow_ups:
            await self._follow_up(follow_ups)
        return events, [c.profile for c in changed]

    async def _first_events(self, changes: list[_Change]) -> list[notifier_pb2.ChangeEvent]:
        """Changes from the committed baseline: a rerun after a crash compares
        against the same generation and so repeats these ids."""
        if not changes:
            return []
        befores = await self.base.profiles([c.uid for c in changes if c.old])
        now = dt.datetime.now(dt.UTC)
        events = []
        for c in changes:
            before = befores.get(c.uid) if c.old else None
            if before is None:
                self.counts.created += 1
            else:
                self.counts.updated += 1
            events.append(self._event(c, before, c.old or "", self.base.generation or "", now))
        await self.draft.put((c.uid, c.new, c.profile) for c in changes)
        crash_point("staged")
        return events

    async def _follow_up(self, changes: list[_Change]) -> None:
        """Changes from a state the draft holds, so the LOB app has it: the
        event that brought it is written ahead (if it was a first change of
        this run) and is out before the new one is staged, written ahead and
        sent. Their ids name this run's draft as the before generation."""
        uids = [c.uid for c in changes]
        logged = await self.draft.follow_up_events(uids)
        staged = await self.draft.profiles(uids)
        missing = [c for c in changes if c.uid not in logged]
        if missing:
            # The first change of each (from the baseline), rebuilt with its id.
            befores = await self.base.profiles([c.uid for c in missing if c.old])
            lob = await self.redis.hmget(LOB_WRITES_KEY, [c.uid for c in missing])
            now = dt.datetime.now(dt.UTC)
            firsts = {}
            for c, lob_digest in zip(missing, lob, strict=True):
                first = _Change(
                    c.uid,
                    staged[c.uid],
                    c.staged or "",
                    c.old,
                    None,
                    lob_digest is not None and as_text(lob_digest) == c.staged,
                )
                before = befores.get(c.uid) if c.old else None
                gen = self.base.generation or ""
                firsts[c.uid] = self._event(first, before, c.old or "", gen, now)
            await self.draft.log_follow_ups(firsts)
        crash_point("reread-logged")
        await self.ctx.sink.flush()  # the state each follow-up starts from is out
        now = dt.datetime.now(dt.UTC)
        events = {}
        for c in changes:
            self.counts.updated += 1
            events[c.uid] = self._event(
                c, staged[c.uid], c.staged or "", self.draft.generation, now
            )
        await self.draft.put_follow_ups([(c.uid, c.new, c.profile) for c in changes], events)
        crash_point("reread-staged")
        await self.ctx.sink.add(events.values())
        await self.ctx.sink.flush()

    def _event(
        self,
        c: _Change,
        before: dict[str, Any] | None,
        before_digest: str,
        before_generation: str,
        now: dt.datetime,
    ) -> notifier_pb2.ChangeEvent:
        return build_event(
            run_id=self.ctx.run_id,
            user_id=c.uid,
            before=before,
            after=c.profile,
            before_digest=before_digest,
            after_digest=c.new,
            origin=notifier_pb2.LOB if c.from_lob else notifier_pb2.SHAREPOINT,
            detect_time=now,
            before_generation=before_generation,
        )
