"""One sync run of one shard, start to finish.

    runner = SyncRunner(settings, redis, store, extender_stub, notifier_stub)
    run = await runner.start(shard_index=0, shard_count=1)   # returns at once, RUNNING
    run = await runner.run_to_end(0, 1)                       # the CronJob's way
    run = await runner.approve_deletes(run_id)                # a held run, released

The steps, and what holds if the process dies after any of them (the crash
tests kill a run at each point named in services.snapshot_differ.crashpoints):

1. take the shard lock (a second run is refused with the holder's id); close
   the records of runs that died, supersede a run held for deletes;
2. stream every profile from the extender; write snapshot parts; compare
   digests with the baseline in pipelined batches; stage changes in a draft
   (only what changed); publish their events batch by batch and file each
   batch in the search index once the notifier holds its events — a crash
   here leaves the committed baseline untouched, and the rerun republishes
   the same event ids, which the notifier drops as duplicates;
3. only when the enumeration is complete and no profile failed: list the
   users that vanished; more than the delete threshold holds the run
   (HELD_FOR_DELETES) with its draft kept for ApproveDeletes, otherwise their
   DELETED events go out too. A partial run keeps everyone it did not read;
4. write the manifest (the snapshot exists from here), flush the publisher;
5. commit (services.snapshot_differ.commit): LATEST, the commit point (one
   transaction), the changes applied to the live baseline in O(changes),
   housekeeping; record the run.

A dry run does steps 1-3 against a scratch draft and publishes, writes and
commits nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import resource
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import redis.asyncio as aioredis
from google.protobuf import json_format

from profilesync.v1 import (
    differ_pb2,
    extender_pb2,
    extender_pb2_grpc,
    notifier_pb2_grpc,
)
from services.common.errors import AlreadyRunning, FailedPrecondition
from services.common.profile_messages import profile_to_dict
from services.common.redis_client import REDIS_UNAVAILABLE
from services.search.index import SearchIndex
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.cluster import JobLauncher
from services.snapshot_differ.commit import commit_run
from services.snapshot_differ.compare import BatchComparer
from services.snapshot_differ.crashpoints import crash_point
from services.snapshot_differ.deletions import (
    DeletePolicy,
    carry,
    carry_unseen,
    list_vanished,
    publish_deletions,
)
from services.snapshot_differ.held import HeldRun
from services.snapshot_differ.indexing import RunIndexer
from services.snapshot_differ.lock import ShardLock
from services.snapshot_differ.object_store import ObjectStore
from services.snapshot_differ.progress import RunObserver
from services.snapshot_differ.publisher import DryRunSink, EventPublisher, EventSink
from services.snapshot_differ.read_ahead import read_ahead
from services.snapshot_differ.run_records import RunRecords, shard_label
from services.snapshot_differ.settings import DifferSettings
from services.snapshot_differ.snapshot import (
    MAX_LISTED_FAILURES,
    SnapshotReader,
    SnapshotWriter,
    shard_prefix,
)
from services.snapshot_differ.stages import StageClock

__all__ = ["SyncRunner", "new_run_id", "shard_label"]

log = logging.getLogger(__name__)

# How often a running run's record is saved, for live progress.
PROGRESS_EVERY_SECONDS = 1.0
REBUILD_CHUNK = 5000
# Compare batches of profiles read ahead of the one being worked on.
READ_AHEAD = 2
# A batch is compared (and its events published) once it is full or this old:
# a paced sweep reads slowly, and an edit it finds should not wait for 1,000 more.
COMPARE_AFTER_SECONDS = 2.0


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


class _NoObserver:
    def update(self, run: differ_pb2.SyncRun, stage: str, expected: int) -> None:
        return None


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


@dataclass
class _Run:
    """A run while it executes."""

    record: differ_pb2.SyncRun
    lock: ShardLock
    observer: RunObserver
    clock: StageClock
    expected: int = 0
    last_saved: float = 0.0
    # The extender's stream ended with its summary: every user was enumerated.
    complete: bool = False
    # The first profile that could not be read, and why: the PARTIAL reason names it.
    first_failure: str = ""
    # Files the run's changes for search; None without an index, or in a dry run.
    indexer: RunIndexer | None = None
    # A paced sweep spreads its reads over this many seconds (0: as fast as allowed).
    spread_seconds: int = 0

    @property
    def shard(self) -> str:
        return shard_label(self.record.shard_index, self.record.shard_count)


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

    # -- starting -----------------------------------------------------------
    async def _begin(
        self,
        shard_index: int,
        shard_count: int,
        *,
        run_id: str | None = None,
        dry_run: bool = False,
        observer: RunObserver | None = None,
        interval_seconds: int = 0,
    ) -> _Run:
        run_id = run_id or new_run_id()
        shard = shard_label(shard_index, shard_count)
        lock = ShardLock(self.redis, shard, run_id, self.settings.lock_ttl_seconds)
        holder = await lock.acquire()
        if holder is not None:
            raise AlreadyRunning(f"a sync of this shard is already running: run {holder}")
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
        run = _Run(record, lock, observer or _NoObserver(), StageClock())
        run.spread_seconds = spread_for(interval_seconds) if interval_seconds > 0 else 0
        return run

    async def start(
        self, shard_index: int, shard_count: int, *, dry_run: bool = False
    ) -> differ_pb2.SyncRun:
        """Starts a run and returns its record (RUNNING): in the background of
        this process, or as a Kubernetes Job in cluster mode."""
        if self.launcher is not None:
            return await self._launch(shard_index, shard_count, dry_run)
        run = await self._begin(shard_index, shard_count, dry_run=dry_run)
        snapshot = differ_pb2.SyncRun()
        snapshot.CopyFrom(run.record)
        self._spawn(self._execute(run))
        return snapshot

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _launch(
        self, shard_index: int, shard_count: int, dry_run: bool
    ) -> differ_pb2.SyncRun:
        assert self.launcher is not None
        run_id = new_run_id()
        shard = shard_label(shard_index, shard_count)
        lock = ShardLock(self.redis, shard, run_id, self.settings.lock_ttl_seconds)
        # The shard is the new run's from now on; its pod takes the lock over.
        holder = await lock.reserve(self.settings.job_start_seconds)
        if holder is not None:
            raise AlreadyRunning(f"a sync of this shard is already running: run {holder}")
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
        run = await self._begin(
            shard_index,
            shard_count,
            run_id=run_id,
            dry_run=dry_run,
            observer=observer,
            interval_seconds=interval_seconds,
        )
        return await self._execute(run)

    async def wait_all(self) -> None:
        """Waits for background runs (used at shutdown after cancelling them)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    # -- executing ----------------------------------------------------------
    async def _execute(self, run: _Run, approve: HeldRun | None = None) -> differ_pb2.SyncRun:
        record = run.record
        try:
            if approve is None:
                await self._sync(run)
            else:
                await self._approve(run, approve)
        except asyncio.CancelledError:
            self._finish(run, differ_pb2.FAILED, "interrupted: the differ was stopped")
            await asyncio.shield(self._close(run))
            raise
        except Exception as error:
            log.exception("sync run %s failed", record.run_id)
            self._finish(run, differ_pb2.FAILED, failure_reason(error))
        await self._close(run)
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

    async def _close(self, run: _Run) -> None:
        # The record first: once the lock is free a RUNNING record reads as dead.
        try:
            await self.records.save(run.record)
            crash_point("finished")
        except aioredis.RedisError as error:
            # Redis is down: the record keeps its last saved state, and reads
            # as interrupted once the lock has expired.
            log.error("could not record the end of run %s: %s", run.record.run_id, error)
        finally:
            await run.lock.release()

    def _finish(self, run: _Run, state: int, error: str = "") -> None:
        record = run.record
        record.state = state  # type: ignore[assignment]
        record.error = error
        record.end_time.GetCurrentTime()
        del record.timings[:]
        record.timings.extend(run.clock.timings())

    async def _progress(self, run: _Run, stage: str) -> None:
        run.observer.update(run.record, stage, run.expected)
        now = time.monotonic()
        if now - run.last_saved >= PROGRESS_EVERY_SECONDS:
            run.last_saved = now
            await self.records.save(run.record)

    async def _profiles(self, run: _Run) -> AsyncIterator[extender_pb2.ListProfilesItem]:
        """The extender's stream, read ahead of the run's work on it, timing
        only the run's wait for each item ("fetch")."""
        request = extender_pb2.ListProfilesRequest(
            shard_index=run.record.shard_index,
            shard_count=run.record.shard_count,
            spread_over_seconds=run.spread_seconds,
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
                run.clock.add("fetch", time.perf_counter() - started)
            run.lock.check()
            yield item

    async def _sync(self, run: _Run) -> None:
        record, settings = run.record, self.settings
        dry = record.dry_run
        reader = SnapshotReader(self.store, shard_prefix(record.shard_index, record.shard_count))
        base = await Baseline.load(self.redis, run.shard)
        if not dry:
            # Drafts of runs that died, and the draft of a held run this one
            # supersedes (its record was closed when this run began).
            await HeldRun.clear(self.redis, run.shard)
            await base.drop_orphans()
        if not base.exists:
            with run.clock.stage("rebuild"):
                await self._rebuild(base, reader, record.run_id)
        if self.search_index is not None and not dry:
            run.indexer = await RunIndexer.start(
                self.search_index, self.redis, run.shard, run.clock
            )
        baseline_users = await base.size()
        run.expected = baseline_users
        generation = f"dry-{record.run_id}" if dry else record.run_id
        draft = await base.draft(generation, dry_run=dry)
        writer = (
            None
            if dry
            else SnapshotWriter(self.store, reader.prefix, record.run_id, settings.part_size)
        )
        sink: EventSink = (
            DryRunSink() if dry else EventPublisher(self.notifier, settings.publish_batch)
        )
        comparer = BatchComparer(base, draft, record.run_id, sink, writer, record.counts, run.clock)
        try:
            await self._stream(run, comparer, draft, sink)
            await self._finish_sync(run, base, draft, reader, writer, sink, baseline_users)
        finally:
            if run.indexer is not None:
                await run.indexer.close()
            if dry:
                await draft.drop()

    async def _stream(
        self, run: _Run, comparer: BatchComparer, draft: BaselineDraft, sink: EventSink
    ) -> None:
        record = run.record
        batch: list[dict[str, Any]] = []
        batch_started = 0.0
        async for item in self._profiles(run):
            kind = item.WhichOneof("item")
            if kind == "profile":
                batch_started = batch_started or time.monotonic()
                batch.append(profile_to_dict(item.profile))
                if (
                    len(batch) >= self.settings.compare_batch
                    or time.monotonic() - batch_started >= COMPARE_AFTER_SECONDS
                ):
                    await self._compare(run, comparer, sink, batch)
                    batch, batch_started = [], 0.0
                    await self._progress(run, "reading")
            elif kind == "failure":
                uid = item.failure.user_id
                await self.redis.sadd(draft.key("seen"), uid)
                await draft.note("failed", [uid])
                record.counts.failed += 1
                run.first_failure = run.first_failure or f"{uid}: {item.failure.reason}"
                log.warning("profile %s could not be read: %s", uid, item.failure.reason)
            elif kind == "no_profile":
                # A state of the account, not a failure: not seen, so a user who
                # had a profile leaves the LOB app's set (DELETED, with the why).
                await draft.note_no_profile(item.no_profile.user_id, item.no_profile.reason)
                record.counts.without_profile += 1
            elif kind == "summary":
                run.complete = True
                record.counts.users = item.summary.users
                self._check_interval(run, item.summary.read_seconds)
        await self._compare(run, comparer, sink, batch)
        await self._progress(run, "reading")
        crash_point("enumerated")

    async def _compare(
        self,
        run: _Run,
        comparer: BatchComparer,
        sink: EventSink,
        batch: list[dict[str, Any]],
    ) -> None:
        """One batch compared, its events out, then filed for search."""
        changed = await comparer.compare(batch)
        if run.indexer is None:
            return
        await sink.flush()
        await run.indexer.file(changed, batch)

    async def _finish_sync(
        self,
        run: _Run,
        base: Baseline,
        draft: BaselineDraft,
        reader: SnapshotReader,
        writer: SnapshotWriter | None,
        sink: EventSink,
        baseline_users: int,
    ) -> None:
        record = run.record
        complete = run.complete
        failed = record.counts.failed
        held_reason = None
        # Deletions, only from a complete enumeration with no failures.
        if complete and not failed:
            with run.clock.stage("compare"):
                vanished = await list_vanished(base, draft)
            crash_point("deletes-found")
            held_reason = self.policy.hold_reason(vanished, baseline_users)
            if held_reason is None:
                with run.clock.stage("compare"):
                    record.counts.deleted = await publish_deletions(
                        base, draft, sink, record.run_id
                    )
                await self._unindex_deletions(run, draft, sink)
            else:
                record.counts.held_deletes = vanished
        elif writer is not None:
            # No deletions from this run: users that could not be read, or
            # were not seen, stay as committed, in the baseline (untouched)
            # and in the snapshot, which must stay a full picture of it.
            with run.clock.stage("snapshot"):
                async for chunk in draft.members("failed"):
                    await carry(base, chunk, writer)
                await carry_unseen(base, draft, writer)
        await self._progress(run, "publishing")

        if writer is not None:
            with run.clock.stage("snapshot"):
                failed_ids = [uid async for chunk in draft.members("failed") for uid in chunk][
                    :MAX_LISTED_FAILURES
                ]
                record.snapshot = await writer.finish(
                    complete=complete and not failed,
                    extra={
                        "shardIndex": record.shard_index,
                        "shardCount": record.shard_count,
                        "counts": json_format.MessageToDict(record.counts),
                        "failedUsers": failed,
                        "failedUserIds": failed_ids,
                        "heldForDeletes": held_reason is not None,
                    },
                )
            crash_point("manifest-written")
        await sink.flush()
        crash_point("flushed")
        if run.indexer is not None:
            await run.indexer.drain()  # every batch filed, whatever the outcome
        record.changes_cursor = await self._changes_cursor(sink, reader)
        run.clock.add("publish", sink.seconds)
        record.counts.events_published = sink.accepted + sink.duplicates

        outcome, reason = differ_pb2.SUCCEEDED, ""
        if not complete:
            outcome, reason = differ_pb2.PARTIAL, "the user enumeration ended early"
        elif failed:
            outcome = differ_pb2.PARTIAL
            reason = (
                f"{failed} profile(s) could not be read and were left unchanged "
                f"(the first, {run.first_failure})"
            )
        elif held_reason is not None:
            outcome = differ_pb2.HELD_FOR_DELETES
            reason = (
                f"{held_reason}: approve with POST /v1/syncs/{record.run_id}:approveDeletes "
                f"or `python -m services.snapshot_differ approve-deletes {record.run_id}`"
            )
        if record.dry_run:
            self._finish(run, outcome, reason)
            return
        if outcome == differ_pb2.HELD_FOR_DELETES:
            held = HeldRun(record.run_id, draft.generation, base.generation, record.snapshot)
            await held.save(self.redis, run.shard)
            log.warning("sync run %s held: %s", record.run_id, held_reason)
            self._finish(run, outcome, reason)
            return
        with run.clock.stage("commit"):
            await self._commit(run, base, draft, reader, complete=complete and not failed)
        self._finish(run, outcome, reason)

    @staticmethod
    def _check_interval(run: _Run, read_seconds: float) -> None:
        """A paced sweep whose reads took longer than allowed says so, with the
        shortest interval it could keep."""
        if not run.spread_seconds or read_seconds <= run.spread_seconds:
            return
        interval = run.record.interval_seconds
        shortest = math.ceil(read_seconds + (interval - run.spread_seconds))
        run.record.shortest_interval_seconds = shortest
        log.warning(
            "sync run %s could not read its shard within the %d s interval: the Graph "
            "budget allows %d s at the shortest",
            run.record.run_id,
            interval,
            shortest,
            extra={"runId": run.record.run_id, "readSeconds": round(read_seconds, 1)},
        )

    @staticmethod
    async def _changes_cursor(sink: EventSink, reader: SnapshotReader) -> str:
        """The change log's cursor after this run's events: after the last
        publish, or where the last committed run left it if this one had
        nothing to publish."""
        if sink.last_cursor:
            return sink.last_cursor
        latest = await asyncio.to_thread(reader.latest)
        return str((latest or {}).get("changesCursor") or "0-0")

    async def _unindex_deletions(self, run: _Run, draft: BaselineDraft, sink: EventSink) -> None:
        """Deleted users leave the search index once their events are out."""
        if run.indexer is None:
            return
        await sink.flush()
        async for chunk in draft.members("deletes"):
            await run.indexer.remove(chunk)

    async def _commit(
        self,
        run: _Run,
        base: Baseline,
        draft: BaselineDraft,
        reader: SnapshotReader,
        *,
        complete: bool,
    ) -> None:
        run.lock.check()
        await commit_run(
            run.record,
            base,
            draft,
            reader,
            keep_snapshots=self.settings.keep_snapshots,
            confirmed=run.record.start_time.ToJsonString() if complete else "",
        )
        if run.indexer is not None:
            await run.indexer.committed(base, run.record.run_id, complete=complete)

    async def _rebuild(self, base: Baseline, reader: SnapshotReader, run_id: str) -> None:
        """Redis lost the baseline: rebuild it from the newest committed snapshot."""
        manifest = await asyncio.to_thread(reader.latest_manifest_key)
        if manifest is None:
            log.info("no baseline and no committed snapshot: every user is new")
            return
        started = time.perf_counter()
        # Named as the lost generation was, after the run that committed the
        # snapshot: event ids derive from it (changes.py), so a rerun of a run
        # that died before Redis lost the baseline repeats that run's ids.
        document = await asyncio.to_thread(reader.manifest, manifest)
        await base.start_over()
        async for batch in reader.batches(manifest, REBUILD_CHUNK):
            await base.put_committed(
                (str(profile["id"]), profile_digest, profile) for profile, profile_digest in batch
            )
        # Only a snapshot read to its end (every checksum verified) is committed.
        await base.mark_committed(str(document.get("runId") or f"rebuilt-{run_id}"))
        log.warning(
            "baseline rebuilt from snapshot %s",
            manifest,
            extra={"users": await base.size(), "seconds": round(time.perf_counter() - started, 3)},
        )

    # -- approving ----------------------------------------------------------
    async def approve_deletes(self, run_id: str, *, wait: bool = True) -> differ_pb2.SyncRun:
        """Publishes a held run's deletions and commits it. With `wait=False`
        the work goes on in the background and the record (RUNNING) returns
        at once, as for StartSync."""
        record = await self.records.get(run_id)
        if record.dry_run:
            raise FailedPrecondition(
                f"run {run_id} was a dry run: it reported what it would do and holds "
                "nothing to approve; start a real run"
            )
        shard = shard_label(record.shard_index, record.shard_count)
        held = await HeldRun.load(self.redis, shard)
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
        lock = ShardLock(self.redis, shard, run_id, self.settings.lock_ttl_seconds)
        holder = await lock.acquire()
        if holder is not None:
            raise AlreadyRunning(f"a sync of this shard is already running: run {holder}")
        try:
            held = await HeldRun.load(self.redis, shard)
            if held is None or held.run_id != run_id:
                raise FailedPrecondition(
                    f"run {run_id} can no longer be approved: a later run of the shard "
                    "superseded it"
                )
            base = await Baseline.load(self.redis, shard)
            draft_kept = await BaselineDraft(base, held.generation).exists()
            if base.generation != held.parent or not draft_kept:
                raise FailedPrecondition(
                    f"run {run_id} can no longer be approved: another run committed after "
                    "it; start a new run"
                )
            record.state = differ_pb2.RUNNING
            record.error = ""
            record.ClearField("end_time")
            await self.records.save(record)
        except BaseException:
            await lock.release()
            raise
        clock = StageClock()
        for timing in record.timings:
            clock.add(timing.stage, timing.seconds)
        run = _Run(record, lock, _NoObserver(), clock)
        if wait:
            return await self._execute(run, approve=held)
        snapshot = differ_pb2.SyncRun()
        snapshot.CopyFrom(record)
        self._spawn(self._execute(run, approve=held))
        return snapshot

    async def _approve(self, run: _Run, held: HeldRun) -> None:
        record = run.record
        base = await Baseline.load(self.redis, run.shard)
        draft = BaselineDraft(base, held.generation)
        publisher = EventPublisher(self.notifier, self.settings.publish_batch)
        if self.search_index is not None:
            run.indexer = await RunIndexer.start(
                self.search_index, self.redis, run.shard, run.clock
            )
        try:
            with run.clock.stage("approve"):
                deleted = await publish_deletions(base, draft, publisher, record.run_id)
                await publisher.flush()
            crash_point("flushed")
            await self._unindex_deletions(run, draft, publisher)
            record.counts.deleted = deleted
            record.counts.held_deletes = 0
            record.counts.events_published += publisher.accepted + publisher.duplicates
            reader = SnapshotReader(
                self.store, shard_prefix(record.shard_index, record.shard_count)
            )
            record.changes_cursor = await self._changes_cursor(publisher, reader)
            with run.clock.stage("commit"):
                await self._commit(run, base, draft, reader, complete=True)
        finally:
            if run.indexer is not None:
                await run.indexer.close()
        log.info("sync run %s approved: %d user(s) deleted", record.run_id, deleted)
        self._finish(run, differ_pb2.SUCCEEDED)
