"""What one run works with, in one place.

    claim = Claim(record, lock)                          # the shard is this run's
    ctx = RunContext(claim, base, draft, reader, sink, writer=writer)
    changed = await BatchComparer(ctx).compare(profiles)
    await ctx.commit(keep_snapshots=10, complete=True)

A run's steps (run.py), its comparer (compare.py) and an approval
(approval.py) read the same object instead of handing its parts along.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from profilesync.v1 import differ_pb2
from services.snapshot_differ.baseline import Baseline, BaselineDraft
from services.snapshot_differ.commit import commit_run
from services.snapshot_differ.indexing import RunIndexer
from services.snapshot_differ.lock import ShardLock
from services.snapshot_differ.progress import RunObserver
from services.snapshot_differ.publisher import EventSink
from services.snapshot_differ.run_records import shard_label
from services.snapshot_differ.snapshot import SnapshotReader, SnapshotWriter
from services.snapshot_differ.stages import StageClock

__all__ = ["Claim", "RunContext"]


class _NoObserver:
    def update(self, run: differ_pb2.SyncRun, stage: str, expected: int) -> None:
        return None


@dataclass(frozen=True)
class RunOptions:
    """How a run goes, beside its shard (SyncRunner.run_to_end's keywords)."""

    run_id: str | None = None
    dry_run: bool = False
    observer: RunObserver | None = None
    # A paced sweep's interval (0: a one-off run, read as fast as allowed).
    interval_seconds: int = 0


@dataclass
class Claim:
    """A run that holds its shard's lock: enough to end it, whatever happens next."""

    record: differ_pb2.SyncRun
    lock: ShardLock
    clock: StageClock = field(default_factory=StageClock)
    observer: RunObserver = field(default_factory=_NoObserver)
    # A paced sweep spreads its reads over this many seconds (0: as fast as allowed).
    spread_seconds: int = 0

    @property
    def shard(self) -> str:
        return shard_label(self.record.shard_index, self.record.shard_count)


@dataclass
class RunContext:
    """A run at work: the baseline it compares against, the draft it stages in,
    where its snapshot and events go, and what it has learnt so far."""

    claim: Claim
    base: Baseline
    draft: BaselineDraft
    reader: SnapshotReader
    sink: EventSink
    # None in a dry run and in an approval: neither writes a snapshot.
    writer: SnapshotWriter | None = None
    # Files the run's changes for search; None without an index, or in a dry run.
    indexer: RunIndexer | None = None
    # Users in the committed baseline when the run began (the delete guard's base).
    baseline_users: int = 0
    last_saved: float = 0.0
    # The extender's stream ended with its summary: every user was enumerated.
    complete: bool = False
    # The first profile that could not be read, and why: the PARTIAL reason names it.
    first_failure: str = ""

    @property
    def record(self) -> differ_pb2.SyncRun:
        return self.claim.record

    @property
    def clock(self) -> StageClock:
        return self.claim.clock

    @property
    def shard(self) -> str:
        return self.claim.shard

    @property
    def run_id(self) -> str:
        return self.claim.record.run_id

    async def unindex_deletions(self) -> None:
        """Deleted users leave the search index once their events are out."""
        if self.indexer is None:
            return
        await self.sink.flush()
        async for chunk in self.draft.members("deletes"):
            await self.indexer.remove(chunk)

    async def changes_cursor(self) -> str:
        """The change log's cursor after this run's events: after the last
        publish, or where the last committed run left it if this one had
        nothing to publish."""
        if self.sink.last_cursor:
            return self.sink.last_cursor
        latest = await asyncio.to_thread(self.reader.latest)
        return str((latest or {}).get("changesCursor") or "0-0")

    async def commit(self, *, keep_snapshots: int, complete: bool) -> None:
        """Makes the draft the baseline (commit.py), still holding the lock."""
        self.claim.lock.check()
        await commit_run(
            self.record,
            self.base,
            self.draft,
            self.reader,
            keep_snapshots=keep_snapshots,
            confirmed=self.record.start_time.ToJsonString() if complete else "",
        )
        if self.indexer is not None:
            await self.indexer.committed(self.base, self.run_id, complete=complete)
