"""The SnapshotDiffer gRPC service.

    servicer = SnapshotDifferServicer(settings, runner)
    differ_pb2_grpc.add_SnapshotDifferServicer_to_server(servicer, server)

StartSync runs the sync in this process, or (cluster mode) as a Job made from
the CronJob; the runner decides. ApproveDeletes finishes a held run here in
either mode: it only publishes deletions and commits, no profile is read.
"""

from __future__ import annotations

from typing import Any

import grpc

from profilesync.v1 import differ_pb2, differ_pb2_grpc
from services.common.errors import InvalidArgument
from services.snapshot_differ.config import DifferSettings
from services.snapshot_differ.listing import SyncedListing
from services.snapshot_differ.run import SyncRunner

__all__ = ["SnapshotDifferServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class SnapshotDifferServicer(differ_pb2_grpc.SnapshotDifferServicer):
    def __init__(self, settings: DifferSettings, runner: SyncRunner) -> None:
        self._settings = settings
        self._runner = runner
        self._listing = SyncedListing(runner.store, settings.shard_count)

    async def StartSync(
        self, request: differ_pb2.StartSyncRequest, context: Context
    ) -> differ_pb2.SyncRun:
        if request.shard_count <= 1 and request.shard_index == 0:
            # No shard asked for: this deployment's own shard.
            index, count = self._settings.shard_index, self._settings.shard_count
        else:
            index, count = request.shard_index, request.shard_count
        if count < 1 or index >= count:
            raise InvalidArgument(f"shardIndex must be below shardCount ({count}), got {index}")
        return await self._runner.start(index, count, dry_run=request.dry_run)

    async def GetSync(
        self, request: differ_pb2.GetSyncRequest, context: Context
    ) -> differ_pb2.SyncRun:
        return await self._runner.records.get(request.run_id)

    async def ListSyncs(
        self, request: differ_pb2.ListSyncsRequest, context: Context
    ) -> differ_pb2.ListSyncsResponse:
        runs = await self._runner.records.newest(request.page_size or 20)
        return differ_pb2.ListSyncsResponse(runs=runs)

    async def ApproveDeletes(
        self, request: differ_pb2.ApproveDeletesRequest, context: Context
    ) -> differ_pb2.SyncRun:
        # Returns at once (RUNNING); GetSync shows the run end SUCCEEDED.
        return await self._runner.approve_deletes(request.run_id, wait=False)

    async def ListSyncedProfiles(
        self, request: differ_pb2.ListSyncedProfilesRequest, context: Context
    ) -> differ_pb2.ListSyncedProfilesResponse:
        return await self._listing.page(request.page_size, request.page_token)
