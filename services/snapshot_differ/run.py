"""One sync run of one shard, start to finish.

    runner = SyncRunner(settings, redis, store, extender_stub, notifier_stub)
    run = await runner.start(shard_index=0, shard_count=1)   # returns at once, RUNNING
    run = await runner.run_to_end(0, 1)                       # the CronJob's way

The steps, and what holds if the process dies after any of them:
1. take the shard lock (a second run is refused with the holder's id);
2. stream every profile from the extender; write snapshot parts; compare
   digests with the baseline in pipelined batches; publish changes as they
   are found; stage them in a draft baseline — a crash here leaves the
   committed baseline untouched, and the rerun republishes the same event
   ids, which the notifier drops as duplicates;
3. only when the enumeration is complete and no profile failed: find users
   that vanished (deletions);
4. write the manifest (the snapshot exists from here), flush the publisher;
5. commit the draft baseline (one atomic pointer switch), mark the snapshot
   LATEST, record the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
from services.common.profiles import digest
from services.common.redis_client import as_text
from services.common.redis_keys import LOB_WRITES_KEY
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.changes import build_event
from services.snapshot_differ.config import DifferSettings
from services.snapshot_differ.lock import ShardLock
from services.snapshot_differ.object_store import ObjectStore
from services.snapshot_differ.publisher import EventPublisher
from services.snapshot_differ.run_records import RunRecords
from services.snapshot_differ.snapshot import SnapshotReader, SnapshotWriter, shard_prefix

__all__ = ["SyncRunner", "new_run_id", "shard_label"]

log = logging.getLogger(__name__)

# How often a running run's record is saved, for live progress.
PROGRESS_EVERY_SECONDS = 1.0


def new_run_id() -> str:
    """Sortable by start time (to the millisecond; runs of one shard never
    overlap), unique across shards and processes."""
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(4)}"


def shard_label(shard_index: int, shard_count: int) -> str:
    return f"s{shard_index}of{shard_count}"


def _profile_dict(profile: Any) -> dict[str, Any]:
    return json_format.MessageToDict(profile, always_print_fields_with_no_presence=True)


@dataclass
class _Progress:
    """Mutable state of a run while it executes."""

    run: differ_pb2.SyncRun
    seen: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    lob_matches: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    last_saved: float = 0.0

    def timed(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds


class SyncRunner:
    def __init__(
        self,
        settings: DifferSettings,
        redis: aioredis.Redis,
        store: ObjectStore,
        extender: extender_pb2_grpc.ProfileExtenderStub,
        notifier: notifier_pb2_grpc.LobNotifierStub,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.store = store
        self.extender = extender
        self.notifier = notifier
        self.records = RunRecords(redis)
        self._tasks: set[asyncio.Task[differ_pb2.SyncRun]] = set()

    async def _begin(
        self, shard_index: int, shard_count: int
    ) -> tuple[differ_pb2.SyncRun, ShardLock]:
        run_id = new_run_id()
        lock = ShardLock(
            self.redis,
            shard_label(shard_index, shard_count),
            run_id,
            self.settings.lock_ttl_seconds,
        )
        holder = await lock.acquire()
        if holder is not None:
            raise AlreadyRunning(f"a sync of this shard is already running: run {holder}")
        run = differ_pb2.SyncRun(
            run_id=run_id,
            state=differ_pb2.RUNNING,
            shard_index=shard_index,
            shard_count=shard_count,
            counts=differ_pb2.SyncCounts(),
        )
        run.start_time.GetCurrentTime()
        await self.records.save(run)
        return run, lock

    async def start(self, shard_index: int, shard_count: int) -> differ_pb2.SyncRun:
        """Starts a run in the background and returns its record (RUNNING)."""
        run, lock = await self._begin(shard_index, shard_count)
        snapshot = differ_pb2.SyncRun()
        snapshot.CopyFrom(run)
        task = asyncio.create_task(self._execute(run, lock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return snapshot

    async def run_to_end(self, shard_index: int, shard_count: int) -> differ_pb2.SyncRun:
        run, lock = await self._begin(shard_index, shard_count)
        return await self._execute(run, lock)

    async def wait_all(self) -> None:
        """Waits for background runs (used at shutdown after cancelling them)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _execute(self, run: differ_pb2.SyncRun, lock: ShardLock) -> differ_pb2.SyncRun:
        progress = _Progress(run)
        try:
            await self._sync(progress, lock)
        except asyncio.CancelledError:
            self._finish(progress, differ_pb2.FAILED, "interrupted: the differ was stopped")
            await asyncio.shield(self.records.save(run))
            raise
        except Exception as error:
            log.exception("sync run %s failed", run.run_id)
            self._finish(progress, differ_pb2.FAILED, f"{type(error).__name__}: {error}")
        finally:
            await lock.release()
        await self.records.save(run)
        log.info(
            "sync run %s ended %s",
            run.run_id,
            differ_pb2.RunState.Name(run.state),
            extra={"counts": json_format.MessageToDict(run.counts)},
        )
        return run

    @staticmethod
    def _finish(progress: _Progress, state: int, error: str = "") -> None:
        run = progress.run
        run.state = state  # type: ignore[assignment]
        run.error = error
        run.end_time.GetCurrentTime()
        del run.timings[:]
        for stage, seconds in progress.stage_seconds.items():
            run.timings.append(differ_pb2.StageTiming(stage=stage, seconds=round(seconds, 4)))

    async def _save_progress(self, progress: _Progress) -> None:
        now = time.monotonic()
        if now - progress.last_saved >= PROGRESS_EVERY_SECONDS:
            progress.last_saved = now
            await self.records.save(progress.run)

    async def _sync(self, progress: _Progress, lock: ShardLock) -> None:
        run, settings = progress.run, self.settings
        shard = shard_label(run.shard_index, run.shard_count)
        reader = SnapshotReader(self.store, shard_prefix(run.shard_index, run.shard_count))
        base = await Baseline.load(self.redis, shard)
        await base.drop_orphans()
        if not base.exists:
            await self._rebuild(base, reader, run.run_id)
        draft = await base.draft(run.run_id)
        writer = SnapshotWriter(self.store, reader.prefix, run.run_id, settings.part_size)
        publisher = EventPublisher(self.notifier, settings.publish_batch)

        # 2. Stream, snapshot, compare, publish, stage.
        fetch_started = time.perf_counter()
        complete = False
        batch: list[dict[str, Any]] = []
        request = extender_pb2.ListProfilesRequest(
            shard_index=run.shard_index, shard_count=run.shard_count
        )
        async for item in self.extender.ListProfiles(request):
            lock.check()
            kind = item.WhichOneof("item")
            if kind == "profile":
                batch.append(_profile_dict(item.profile))
                if len(batch) >= settings.compare_batch:
                    await self._compare(progress, base, draft, writer, publisher, batch)
                    batch = []
                    await self._save_progress(progress)
            elif kind == "failure":
                progress.failed.append(item.failure.user_id)
                progress.seen.add(item.failure.user_id)
                log.warning(
                    "profile %s could not be read: %s", item.failure.user_id, item.failure.reason
                )
            elif kind == "summary":
                complete = True
                run.counts.users = item.summary.users
        await self._compare(progress, base, draft, writer, publisher, batch)
        progress.timed("fetch", time.perf_counter() - fetch_started)
        run.counts.failed = len(progress.failed)

        # 3. Deletions, only from a complete enumeration with no failures.
        if complete and not progress.failed:
            await self._delete_vanished(progress, base, draft, publisher)
        await self._carry_failed(progress, base, writer)

        # 4. Manifest, then every event out.
        started = time.perf_counter()
        run.snapshot = writer.finish(
            complete=complete and not progress.failed,
            extra={
                "shardIndex": run.shard_index,
                "shardCount": run.shard_count,
                "failedUserIds": progress.failed,
            },
        )
        progress.timed("snapshot", time.perf_counter() - started)
        await publisher.flush()
        progress.timed("publish", publisher.seconds)
        run.counts.events_published = publisher.accepted + publisher.duplicates

        # 5. Commit.
        lock.check()
        started = time.perf_counter()
        await draft.commit()
        if progress.lob_matches:
            await self.redis.hdel(LOB_WRITES_KEY, *progress.lob_matches)
        reader.mark_latest(run.snapshot)
        reader.prune(settings.keep_snapshots)
        progress.timed("commit", time.perf_counter() - started)
        if not complete:
            self._finish(progress, differ_pb2.PARTIAL, "the user enumeration ended early")
        elif progress.failed:
            self._finish(
                progress,
                differ_pb2.PARTIAL,
                f"{len(progress.failed)} profile(s) could not be read and were left unchanged",
            )
        else:
            self._finish(progress, differ_pb2.SUCCEEDED)

    async def _compare(
        self,
        progress: _Progress,
        base: Baseline,
        draft: BaselineDraft,
        writer: SnapshotWriter,
        publisher: EventPublisher,
        batch: Sequence[dict[str, Any]],
    ) -> None:
        if not batch:
            return
        run = progress.run
        started = time.perf_counter()
        ids = [str(profile["id"]) for profile in batch]
        new_digests = [digest(profile) for profile in batch]
        old_digests = await base.digests(ids)
        snapshot_started = time.perf_counter()
        for profile, new in zip(batch, new_digests, strict=True):
            writer.add(profile, new)
        progress.timed("snapshot", time.perf_counter() - snapshot_started)
        progress.seen.update(ids)
        run.counts.profiles += len(batch)
        changed = [
            (profile, new, old)
            for profile, new, old in zip(batch, new_digests, old_digests, strict=True)
            if new != old
        ]
        run.counts.unchanged += len(batch) - len(changed)
        if not changed:
            progress.timed("compare", time.perf_counter() - started)
            return
        changed_ids = [str(profile["id"]) for profile, _, _ in changed]
        befores = await base.profiles(
            [uid for uid, (_, _, old) in zip(changed_ids, changed, strict=True) if old]
        )
        lob_digests = await self.redis.hmget(LOB_WRITES_KEY, changed_ids)
        now = dt.datetime.now(dt.UTC)
        events = []
        for (profile, new, old), uid, lob in zip(changed, changed_ids, lob_digests, strict=True):
            from_lob = lob is not None and as_text(lob) == new
            if from_lob:
                progress.lob_matches.append(uid)
            before = befores.get(uid) if old else None
            if before is None:
                run.counts.created += 1
            else:
                run.counts.updated += 1
            events.append(
                build_event(
                    run_id=run.run_id,
                    user_id=uid,
                    before=before,
                    after=profile,
                    before_digest=old or "",
                    after_digest=new,
                    origin=notifier_pb2.LOB if from_lob else notifier_pb2.SHAREPOINT,
                    detect_time=now,
                )
            )
        await draft.put(
            (uid, new, profile) for (profile, new, _), uid in zip(changed, changed_ids, strict=True)
        )
        progress.timed("compare", time.perf_counter() - started)
        await publisher.add(events)

    async def _delete_vanished(
        self, progress: _Progress, base: Baseline, draft: BaselineDraft, publisher: EventPublisher
    ) -> None:
        started = time.perf_counter()
        vanished = [uid async for uid in base.user_ids() if uid not in progress.seen]
        now = dt.datetime.now(dt.UTC)
        run = progress.run
        for start in range(0, len(vanished), self.settings.compare_batch):
            chunk = vanished[start : start + self.settings.compare_batch]
            befores = await base.profiles(chunk)
            old_digests = await base.digests(chunk)
            events = [
                build_event(
                    run_id=run.run_id,
                    user_id=uid,
                    before=befores.get(uid, {"id": uid}),
                    after=None,
                    before_digest=old or "",
                    after_digest="",
                    origin=notifier_pb2.SHAREPOINT,
                    detect_time=now,
                )
                for uid, old in zip(chunk, old_digests, strict=True)
            ]
            await draft.remove(chunk)
            run.counts.deleted += len(chunk)
            await publisher.add(events)
        progress.timed("compare", time.perf_counter() - started)

    async def _carry_failed(
        self, progress: _Progress, base: Baseline, writer: SnapshotWriter
    ) -> None:
        """Failed users keep their committed profile, in the baseline and in the snapshot,
        so the snapshot stays a complete picture of what is committed."""
        if not progress.failed:
            return
        befores = await base.profiles(progress.failed)
        digests = await base.digests(list(befores))
        for (_uid, profile), old in zip(befores.items(), digests, strict=True):
            if old:
                writer.add(profile, old)

    async def _rebuild(self, base: Baseline, reader: SnapshotReader, run_id: str) -> None:
        """Redis lost the baseline: rebuild it from the newest committed snapshot."""
        manifest = reader.latest_manifest_key()
        if manifest is None:
            log.info("no baseline and no committed snapshot: every user is new")
            return
        started = time.perf_counter()
        draft = BaselineDraft(base, f"rebuilt-{run_id}")
        await draft.reset()
        chunk: list[tuple[str, str, dict[str, Any]]] = []
        for profile, profile_digest in reader.records(manifest):
            chunk.append((str(profile["id"]), profile_digest, profile))
            if len(chunk) >= 5000:
                await draft.put(chunk)
                chunk = []
        await draft.put(chunk)
        await draft.commit()
        log.warning(
            "baseline rebuilt from snapshot %s",
            manifest,
            extra={"users": await base.size(), "seconds": round(time.perf_counter() - started, 3)},
        )
