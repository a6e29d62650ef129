"""One sync run of one shard, start to finish.

    runner = SyncRunner(settings, redis, store, extender_stub, notifier_stub)
    run = await runner.start(shard_index=0, shard_count=1)   # returns at once, RUNNING
    run = await runner.run_to_end(0, 1)                       # the CronJob's way
    run = await runner.approve_deletes(run_id)                # a held run, released

The steps, and what holds if the process dies after any of them (the crash
tests kill a run at each point named in services.snapshot_differ.crashpoints):

1. take the shard lock (a second run is refused with the holder's id); close
   the records of runs that died, supersede a run held for deletes (`_begin`);
2. stream every profile from the extender; write snapshot parts; compare
   digests with the baseline in pipelined batches; stage changes in a draft
   (only what changed); publish their events batch by batch and file each
   batch in the search index once the notifier holds its events — a crash
   here leaves the committed baseline untouched, and the rerun republishes
   the same event ids, which the notifier drops as duplicates (`_stream`);
3. only when the enumeration is complete and no profile failed: list the
   users that vanished; more than the delete threshold holds the run
   (HELD_FOR_DELETES) with its draft kept for ApproveDeletes, otherwise their
   DELETED events go out too. A partial run keeps everyone it did not read
   (`_deletions`);
4. write the manifest (the snapshot exists from here), flush the publisher;
5. commit (services.snapshot_differ.commit): LATEST, the commit point (one
   transaction), the changes applied to the live baseline in O(changes),
   housekeeping; record the run (`_conclude`).

A dry run does steps 1-3 against a scratch draft and publishes, writes and
commits nothing. Every step reads the run's context (context.py: its record,
lock, baseline, draft, snapshot writer and event sink); approving a held run
is approval.py, rebuilding a lost baseline from its snapshot rebuild.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import resource
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import redis.asyncio as aioredis
from google.protobuf import json_format

from profilesync.v1 import (
    differ_pb2,
    extender_pb2,
    extender_pb2_grpc,
    notifier_pb2,
    notifier_pb2_grpc,
)
from services.common.errors import AlreadyRunning
from services.common.profile_messages import profile_to_dict
from services.common.redis_client import REDIS_UNAVAILABLE
from services.search.index import SearchIndex
from services.snapshot_differ.approval import approvable, release_deletions, still_held
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.cluster import JobLauncher
from services.snapshot_differ.compare import BatchComparer
from services.snapshot_differ.context import Claim, RunContext, RunOptions
from services.snapshot_differ.crashpoints import crash_point
from services.snapshot_differ.deletions import (
    DeletePolicy,
    carry,
    carry_unseen,
    list_vanished,
    publish_deletions,
)
from services.snapshot_differ.held import HeldRun
from services.snapshot_differ.hot import HotRereads, HotSet
from services.snapshot_differ.indexing import RunIndexer
from services.snapshot_differ.lock import ShardLock
from services.snapshot_differ.object_store import ObjectStore
from services.snapshot_differ.progress import RunObserver
from services.snapshot_differ.publisher import DryRunSink, EventPublisher, EventSink
from services.snapshot_differ.read_ahead import read_ahead
from services.snapshot_differ.rebuild import rebuild_baseline
from services.snapshot_differ.run_records import RunRecords, shard_label
from services.snapshot_differ.settings import DifferSettings
from services.snapshot_differ.snapshot import (
    MAX_LISTED_FAILURES,
    SnapshotReader,
    SnapshotWriter,
    shard_prefix,
)

__all__ = ["SyncRunner", "new_run_id", "shard_label"]

log = logging.getLogger(__name__)

# How often a running run's record is saved, for live progress.
PROGRESS_EVERY_SECONDS = 1.0
# Compare batches of profiles read ahead of the one being worked on.
READ_AHEAD = 2


def compare_after(paced: bool) -> float:
    """How old a batch of profiles read may get before it is compared and its
    events published (if it is not full before). A paced sweep reads a trickle
    (users / interval) and is there for freshness: an edit it finds goes out
    within half a second, not after 1,000 more profiles. A run at full speed
    fills a batch in about 2 s anyway."""
    return 0.5 if paced else 2.0


def spread_for(interval_seconds: int) -> int:
    """How long a paced sweep spreads its reads: the interval less a margin for
    the last answers, the publishing and the commit (10%, 5 s to 60 s)."""
    margin = min(60, max(5, interval_seconds // 10))
    return max(1, interval_seconds - margin)


def new_run_id() -> str:
    """Sortable by start time (to the millisecond; runs of one shard never
    overlap), unique across shards and processes."""
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(4)}"


def _peak_rss_bytes() -> int:
    """This process's RSS high-water mark. VmHWM on Linux: getrusage's
    ru_maxrss survives exec, so it would include the parent's size at fork."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def failure_reason(error: Exception) -> str:
    """What a run record says about the error that ended the run."""
    if isinstance(error, grpc.aio.AioRpcError):
        # The status and its details, not grpc's multi-line repr with its debug string.
        return f"{error.code().name}: {error.details()}"
    if isinstance(error, REDIS_UNAVAILABLE):
        # A node lost, a failover or resharding: nothing was committed, and the
        # next run (or a retry) picks up where the baseline stands.
        return f"Redis unavailable, retry ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


class SyncRunner:
    def __init__(
        self,
        settings: DifferSettings,
        redis: aioredis.Redis,
        store: ObjectStore,
        extender: extender_pb2_grpc.ProfileExtenderStub,
        notifier: notifier_pb2_grpc.LobNotifierStub,
        *,
        launcher: JobLauncher | None = None,
        search_index: SearchIndex | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.store = store
        self.extender = extender
        self.notifier = notifier
        self.launcher = launcher
        # Each run files its changes here as they are published (indexing.py).
        self.search_index = search_index
        self.records = RunRecords(redis)
        self.policy = DeletePolicy(
            settings.delete_threshold_percent, settings.delete_threshold_count
        )
        self._tasks: set[asyncio.Task[differ_pb2.SyncRun]] = set()
        # Per shard, users whose profile just changed (hot.py), kept from one
        # paced run to the next.
        self._hot: dict[str, HotSet] = {}

    # -- starting -----------------------------------------------------------
    async def _take_lock(self, shard: str, run_id: str, *, reserve_seconds: int = 0) -> ShardLock:
        """The shard's lock, held (and renewed) by `run_id`, or reserved for
        `reserve_seconds` for a Job that takes it over; AlreadyRunning naming
        the holder if another run has it."""
        lock = ShardLock(self.redis, shard, run_id, self.settings.lock_ttl_seconds)
        if reserve_seconds:
            holder = await lock.reserve(reserve_seconds)
        else:
            holder = await lock.acquire()
        if holder is not None:
            raise AlreadyRunning(f"a sync of this shard is already running: run {holder}")
        return lock

    async def _begin(self, shard_index: int, shard_count: int, options: RunOptions) -> Claim:
        run_id = options.run_id or new_run_id()
        dry_run, interval_seconds = options.dry_run, options.interval_seconds
        shard = shard_label(shard_index, shard_count)
        lock = await self._take_lock(shard, run_id)
        try:
            # A Job's run finds the record StartSync made for it.
            record = await self.records.find(run_id)
            if record is None:
                record = differ_pb2.SyncRun(run_id=run_id)
                record.start_time.GetCurrentTime()
            record.state = differ_pb2.RUNNING
            record.shard_index = shard_index
            record.shard_count = shard_count
            record.dry_run = dry_run
            record.interval_seconds = interval_seconds
            record.counts.CopyFrom(differ_pb2.SyncCounts())
            await self.records.close_stale(shard, run_id, supersede_held=not dry_run)
            await self.records.save(record)
        except BaseException:
            await lock.release()
            raise
        crash_point("locked")
        claim = Claim(record, lock)
        if options.observer is not None:
            claim.observer = options.observer
        claim.spread_seconds = spread_for(interval_seconds) if interval_seconds > 0 else 0
        return claim

    async def start(
        self, shard_index: int, shard_count: int, *, dry_run: bool = False
    ) -> differ_pb2.SyncRun:
        """Starts a run and returns its record (RUNNING): in the background of
        this process, or as a Kubernetes Job in cluster mode."""
        if self.launcher is not None:
            return await self._launch(shard_index, shard_count, dry_run)
        claim = await self._begin(shard_index, shard_count, RunOptions(dry_run=dry_run))
        return self._in_background(claim)

    def _in_background(self, claim: Claim, held: HeldRun | None = None) -> differ_pb2.SyncRun:
        """Runs (or approves) in the background; returns the record as it is now."""
        snapshot = differ_pb2.SyncRun()
        snapshot.CopyFrom(claim.record)
        task = asyncio.create_task(self._execute(claim, held))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return snapshot

    async def _launch(
        self, shard_index: int, shard_count: int, dry_run: bool
    ) -> differ_pb2.SyncRun:
        assert self.launcher is not None
        run_id = new_run_id()
        # The shard is the new run's from now on; its pod takes the lock over.
        lock = await self._take_lock(
            shard_label(shard_index, shard_count),
            run_id,
            reserve_seconds=self.settings.job_start_seconds,
        )
        record = differ_pb2.SyncRun(
            run_id=run_id,
            state=differ_pb2.RUNNING,
            shard_index=shard_index,
            shard_count=shard_count,
            dry_run=dry_run,
            counts=differ_pb2.SyncCounts(),
        )
        record.start_time.GetCurrentTime()
        await self.records.save(record)
        try:
            await self.launcher.launch(record)
        except Exception as error:
            record.state = differ_pb2.FAILED
            record.error = f"could not start the run's Job: {error}"
            record.end_time.GetCurrentTime()
            await self.records.save(record)
            await lock.release()
            raise
        return record

    async def run_to_end(
        self,
        shard_index: int,
        shard_count: int,
        *,
        run_id: str | None = None,
        dry_run: bool = False,
        observer: RunObserver | None = None,
        interval_seconds: int = 0,
    ) -> differ_pb2.SyncRun:
        """Runs to the end here. `interval_seconds` makes it a paced sweep: its
        reads are spread over the interval less a margin for the commit."""
        options = RunOptions(run_id, dry_run, observer, interval_seconds)
        return await self._execute(await self._begin(shard_index, shard_count, options))

    async def wait_all(self) -> None:
        """Waits for background runs (used at shutdown after cancelling them)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    # -- executing ----------------------------------------------------------
    async def _execute(self, claim: Claim, held: HeldRun | None = None) -> differ_pb2.SyncRun:
        """A sync (or, given `held`, an approval) to its end, whatever the end."""
        record = claim.record
        try:
            if held is None:
                await self._sync(claim)
            else:
                await self._approve(claim, held)
        except asyncio.CancelledError:
            self._finish(claim, differ_pb2.FAILED, "interrupted: the differ was stopped")
            await asyncio.shield(self._close(claim))
            raise
        except Exception as error:
            log.exception("sync run %s failed", record.run_id)
            self._finish(claim, differ_pb2.FAILED, failure_reason(error))
        await self._close(claim)
        log.info(
            "sync run %s ended %s",
            record.run_id,
            differ_pb2.RunState.Name(record.state),
            extra={
                "runId": record.run_id,
                "dryRun": record.dry_run,
                "counts": json_format.MessageToDict(record.counts),
                "timings": {t.stage: t.seconds for t in record.timings},
                "peakRssBytes": _peak_rss_bytes(),
            },
        )
        return record

    async def _close(self, claim: Claim) -> None:
        # The record first: once the lock is free a RUNNING record reads as dead.
        try:
            await self.records.save(claim.record)
            crash_point("finished")
        except aioredis.RedisError as error:
            # Redis is down: the record keeps its last saved state, and reads
            # as interrupted once the lock has expired.
            log.error("could not record the end of run %s: %s", claim.record.run_id, error)
        finally:
            await claim.lock.release()

    @staticmethod
    def _finish(claim: Claim, state: int, error: str = "") -> None:
        record = claim.record
        record.state = state  # type: ignore[assignment]
        record.error = error
        record.end_time.GetCurrentTime()
        del record.timings[:]
        record.timings.extend(claim.clock.timings())

    @contextlib.asynccontextmanager
    async def _context(
        self,
        claim: Claim,
        base: Baseline,
        draft: BaselineDraft,
        sink: EventSink,
        writer: SnapshotWriter | None = None,
    ) -> AsyncIterator[RunContext]:
        """The run's context, with its search indexer while it lasts."""
        record = claim.record
        ctx = RunContext(
            claim,
            base,
            draft,
            SnapshotReader(self.store, shard_prefix(record.shard_index, record.shard_count)),
            sink,
            writer,
        )
        if self.search_index is not None and not record.dry_run:
            ctx.indexer = await RunIndexer.start(
                self.search_index, self.redis, claim.shard, claim.clock
            )
        try:
            yield ctx
        finally:
            if ctx.indexer is not None:
                await ctx.indexer.close()

    async def _progress(self, ctx: RunContext, stage: str) -> None:
        ctx.claim.observer.update(ctx.record, stage, ctx.baseline_users)
        now = time.monotonic()
        if now - ctx.last_saved >= PROGRESS_EVERY_SECONDS:
            ctx.last_saved = now
            await self.records.save(ctx.record)

    # -- a sync: read, compare, publish, conclude ---------------------------
    async def _sync(self, claim: Claim) -> None:
        record, settings = claim.record, self.settings
        dry = record.dry_run
        reader = SnapshotReader(self.store, shard_prefix(record.shard_index, record.shard_count))
        base = await Baseline.load(self.redis, claim.shard)
        if not dry:
            # The draft of a held run this one supersedes (its record was
            # closed when this run began) goes with the drafts of runs that died.
            await HeldRun.clear(self.redis, claim.shard)
        if not base.exists:
            if not dry:
                await base.drop_orphans()
            with claim.clock.stage("rebuild"):
                await rebuild_baseline(base, reader, record.run_id)
        generation = f"dry-{record.run_id}" if dry else record.run_id
        draft = await base.draft(generation, dry_run=dry)
        carried = {} if dry else await self._take_over(base, draft)
        writer = (
            None
            if dry
            else SnapshotWriter(self.store, reader.prefix, record.run_id, settings.part_size)
        )
        sink: EventSink = (
            DryRunSink() if dry else EventPublisher(self.notifier, settings.publish_batch)
        )
        try:
            async with self._context(claim, base, draft, sink, writer) as ctx:
                ctx.baseline_users = await base.size()
                if carried:
                    await sink.add(notifier_pb2.ChangeEvent.FromString(e) for e in carried.values())
                    await sink.flush()
                await self._stream(ctx)
                await self._conclude(ctx)
        finally:
            if dry:
                await draft.drop()

    @staticmethod
    async def _take_over(base: Baseline, draft: BaselineDraft) -> dict[str, bytes]:
        """Drops the drafts of runs that died, taking over first the follow-up
        events written ahead in them (compare.py), to be sent again; returns
        them (user id -> serialized event)."""
        carried: dict[str, bytes] = {}
        for orphan in await base.orphan_generations():  # oldest first: the newest wins
            if orphan != draft.generation:
                carried.update(await draft.carry_follow_ups(orphan))
        await base.drop_orphans(keep={draft.generation})
        return carried

    async def _profiles(self, ctx: RunContext) -> AsyncIterator[extender_pb2.ListProfilesItem]:
        """The extender's stream, read ahead of the run's work on it, timing
        only the run's wait for each item ("fetch")."""
        request = extender_pb2.ListProfilesRequest(
            shard_index=ctx.record.shard_index,
            shard_count=ctx.record.shard_count,
            spread_over_seconds=ctx.claim.spread_seconds,
        )
        stream = read_ahead(
            aiter(self.extender.ListProfiles(request)), READ_AHEAD * self.settings.compare_batch
        )
        while True:
            started = time.perf_counter()
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                return
            finally:
                ctx.clock.add("fetch", time.perf_counter() - started)
            ctx.claim.lock.check()
            yield item

    def _hot_rereads(self, ctx: RunContext, comparer: BatchComparer) -> HotRereads | None:
        """The hot re-read cycle beside a paced run (hot.py); None for other runs."""
        settings = self.settings
        if (
            not ctx.claim.spread_seconds
            or ctx.record.dry_run
            or not settings.hot_share
            or not ctx.base.exists
        ):
            return None
        hot = self._hot.setdefault(
            ctx.shard, HotSet(settings.hot_reread_seconds, settings.hot_quiet_seconds)
        )

        async def compare(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return await self._compare(ctx, comparer, profiles, reread=True)

        return HotRereads(
            hot,
            self.extender,
            self.redis,
            shard_index=ctx.record.shard_index,
            shard_count=ctx.record.shard_count,
            share_percent=max(1, round(settings.hot_share * 100)),
            compare=compare,
        )

    async def _stream(self, ctx: RunContext) -> None:
        """The sweep's read of every user, with hot re-reads beside it in a paced run."""
        comparer = BatchComparer(ctx)
        rereads = self._hot_rereads(ctx, comparer)
        if rereads is None:
            await self._read_all(ctx, comparer)
            return
        spread_ends = time.monotonic() + ctx.claim.spread_seconds
        cycle = asyncio.create_task(rereads.run())
        try:
            await self._read_all(ctx, comparer)
            # The sweep's reads may end before the spread does (the last batch
            # goes one batch's time early, a small shard's much earlier): the
            # re-reads go on until then, so follow-ups do not wait for the next run.
            await rereads.until(spread_ends, ctx.claim.lock.check)
        finally:
            cycle.cancel()
            # Its error, if it ended with one, ends the run (nothing committed).
            outcome = await asyncio.gather(cycle, return_exceptions=True)
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        log.info(
            "sync run %s re-read %d profile(s) of recently changed users",
            ctx.run_id,
            rereads.reads,
            extra={
                "runId": ctx.run_id,
                "hotUsers": len(rereads.hot),
                "hotYield": round(rereads.hot.yield_estimate, 3),
            },
        )

    async def _read_all(self, ctx: RunContext, comparer: BatchComparer) -> None:
        record, draft = ctx.record, ctx.draft
        batch: list[dict[str, Any]] = []
        batch_started = 0.0
        batch_age = compare_after(paced=bool(ctx.claim.spread_seconds))
        async for item in self._profiles(ctx):
            kind = item.WhichOneof("item")
            if kind == "profile":
                batch_started = batch_started or time.monotonic()
                batch.append(profile_to_dict(item.profile))
                if (
                    len(batch) >= self.settings.compare_batch
                    or time.monotonic() - batch_started >= batch_age
                ):
                    await self._compare(ctx, comparer, batch)
                    batch, batch_started = [], 0.0
                    await self._progress(ctx, "reading")
            elif kind == "failure":
                uid = item.failure.user_id
                await self.redis.sadd(draft.key("seen"), uid)
                await draft.note("failed", [uid])
                record.counts.failed += 1
                ctx.first_failure = ctx.first_failure or f"{uid}: {item.failure.reason}"
                log.warning("profile %s could not be read: %s", uid, item.failure.reason)
            elif kind == "no_profile":
                # A state of the account, not a failure: not seen, so a user who
                # had a profile leaves the LOB app's set (DELETED, with the why).
                await draft.note_no_profile(item.no_profile.user_id, item.no_profile.reason)
                record.counts.without_profile += 1
            elif kind == "summary":
                ctx.complete = True
                record.counts.users = item.summary.users
                self._check_interval(ctx.claim, item.summary.read_seconds)
        await self._compare(ctx, comparer, batch)
        await self._progress(ctx, "reading")
        crash_point("enumerated")

    async def _compare(
        self,
        ctx: RunContext,
        comparer: BatchComparer,
        batch: list[dict[str, Any]],
        *,
        reread: bool = False,
    ) -> list[dict[str, Any]]:
        """One batch compared, its events out, then filed for search; returns
        the profiles that changed, whose users are then re-read on the hot cycle."""
        async with comparer.lock:
            changed = await comparer.compare(batch, reread=reread)
            if reread or ctx.indexer is not None:
                await ctx.sink.flush()  # a re-read is for freshness: out at once
            if ctx.indexer is not None:
                await ctx.indexer.file(changed, batch)
        hot = self._hot.get(ctx.shard)
        if hot is not None and not reread:
            hot.changed(str(profile["id"]) for profile in changed)
        return changed

    async def _conclude(self, ctx: RunContext) -> None:
        """Deletions (or the hold), the manifest, the last events, the commit."""
        record = ctx.record
        whole = ctx.complete and not record.counts.failed
        held_reason = await self._deletions(ctx) if whole else None
        await self._progress(ctx, "publishing")
        if ctx.writer is not None:
            await self._write_manifest(ctx, ctx.writer, held=held_reason is not None)
        await ctx.sink.flush()
        crash_point("flushed")
        if ctx.indexer is not None:
            await ctx.indexer.drain()  # every batch filed, whatever the outcome
        record.changes_cursor = await ctx.changes_cursor()
        ctx.clock.add("publish", ctx.sink.seconds)
        record.counts.events_published = ctx.sink.accepted + ctx.sink.duplicates

        outcome, reason = self._outcome(ctx, held_reason)
        if record.dry_run:
            self._finish(ctx.claim, outcome, reason)
            return
        if outcome == differ_pb2.HELD_FOR_DELETES:
            held = HeldRun(
                record.run_id, ctx.draft.generation, ctx.base.generation, record.snapshot
            )
            await held.save(self.redis, ctx.shard)
            log.warning("sync run %s held: %s", record.run_id, held_reason)
            self._finish(ctx.claim, outcome, reason)
            return
        with ctx.clock.stage("commit"):
            await ctx.commit(keep_snapshots=self.settings.keep_snapshots, complete=whole)
        self._finish(ctx.claim, outcome, reason)

    async def _deletions(self, ctx: RunContext) -> str | None:
        """After a whole enumeration: the vanished users' DELETED events go
        out, or, past the delete threshold, the reason the run is held."""
        with ctx.clock.stage("compare"):
            vanished = await list_vanished(ctx.base, ctx.draft)
        crash_point("deletes-found")
        held_reason = self.policy.hold_reason(vanished, ctx.baseline_users)
        if held_reason is not None:
            ctx.record.counts.held_deletes = vanished
            return held_reason
        with ctx.clock.stage("compare"):
            ctx.record.counts.deleted = await publish_deletions(
                ctx.base, ctx.draft, ctx.sink, ctx.run_id
            )
        await ctx.unindex_deletions()
        return None

    @staticmethod
    async def _write_manifest(ctx: RunContext, writer: SnapshotWriter, *, held: bool) -> None:
        record, draft = ctx.record, ctx.draft
        failed = record.counts.failed
        complete = ctx.complete and not failed
        with ctx.clock.stage("snapshot"):
            if not complete:
                # No deletions from this run: users that could not be read, or
                # were not seen, stay as committed, in the baseline (untouched)
                # and in the snapshot, which must stay a full picture of it.
                async for chunk in draft.members("failed"):
                    await carry(ctx.base, chunk, writer)
                await carry_unseen(ctx.base, draft, writer)
            failed_ids = [uid async for chunk in draft.members("failed") for uid in chunk][
                :MAX_LISTED_FAILURES
            ]
            record.snapshot = await writer.finish(
                complete=complete,
                extra={
                    "shardIndex": record.shard_index,
                    "shardCount": record.shard_count,
                    "counts": json_format.MessageToDict(record.counts),
                    "failedUsers": failed,
                    "failedUserIds": failed_ids,
                    "heldForDeletes": held,
                },
            )
        crash_point("manifest-written")

    @staticmethod
    def _outcome(ctx: RunContext, held_reason: str | None) -> tuple[int, str]:
        record = ctx.record
        failed = record.counts.failed
        if not ctx.complete:
            return differ_pb2.PARTIAL, "the user enumeration ended early"
        if failed:
            return differ_pb2.PARTIAL, (
                f"{failed} profile(s) could not be read and were left unchanged "
                f"(the first, {ctx.first_failure})"
            )
        if held_reason is not None:
            return differ_pb2.HELD_FOR_DELETES, (
                f"{held_reason}: approve with POST /v1/syncs/{record.run_id}:approveDeletes "
                f"or `python -m services.snapshot_differ approve-deletes {record.run_id}`"
            )
        return differ_pb2.SUCCEEDED, ""

    @staticmethod
    def _check_interval(claim: Claim, read_seconds: float) -> None:
        """A paced sweep whose reads took longer than allowed says so, with the
        shortest interval it could keep."""
        if not claim.spread_seconds or read_seconds <= claim.spread_seconds:
            return
        interval = claim.record.interval_seconds
        shortest = math.ceil(read_seconds + (interval - claim.spread_seconds))
        claim.record.shortest_interval_seconds = shortest
        log.warning(
            "sync run %s could not read its shard within the %d s interval: the Graph "
            "budget allows %d s at the shortest",
            claim.record.run_id,
            interval,
            shortest,
            extra={"runId": claim.record.run_id, "readSeconds": round(read_seconds, 1)},
        )

    # -- approving (approval.py) --------------------------------------------
    async def approve_deletes(self, run_id: str, *, wait: bool = True) -> differ_pb2.SyncRun:
        """Publishes a held run's deletions and commits it. With `wait=False`
        the work goes on in the background and the record (RUNNING) returns
        at once, as for StartSync."""
        record = await approvable(self.records, self.redis, run_id)
        shard = shard_label(record.shard_index, record.shard_count)
        lock = await self._take_lock(shard, run_id)
        try:
            held = await still_held(self.redis, shard, run_id)
            record.state = differ_pb2.RUNNING
            record.error = ""
            record.ClearField("end_time")
            await self.records.save(record)
        except BaseException:
            await lock.release()
            raise
        claim = Claim(record, lock)
        for timing in record.timings:
            claim.clock.add(timing.stage, timing.seconds)
        if wait:
            return await self._execute(claim, held)
        return self._in_background(claim, held)

    async def _approve(self, claim: Claim, held: HeldRun) -> None:
        base = await Baseline.load(self.redis, claim.shard)
        draft = BaselineDraft(base, held.generation)
        publisher = EventPublisher(self.notifier, self.settings.publish_batch)
        async with self._context(claim, base, draft, publisher) as ctx:
            await release_deletions(ctx, keep_snapshots=self.settings.keep_snapshots)
        self._finish(claim, differ_pb2.SUCCEEDED)
