"""The SnapshotDiffer gRPC service.

    servicer = SnapshotDifferServicer(settings, runner)
    differ_pb2_grpc.add_SnapshotDifferServicer_to_server(servicer, server)

StartSync runs the sync in this process, or (cluster mode) as a Job made from
the CronJob; the runner decides. ApproveDeletes finishes a held run here in
either mode: it only publishes deletions and commits, no profile is read.
"""

from __future__ import annotations

from typing import Any, Final

import grpc

from profilesync.v1 import differ_pb2, differ_pb2_grpc
from services.common.auth import current_principal
from services.common.errors import InvalidArgument, PermissionDenied
from services.common.server import ServiceBinding
from services.snapshot_differ.listing import SyncedListing
from services.snapshot_differ.run import SyncRunner
from services.snapshot_differ.settings import DifferSettings

__all__ = ["SnapshotDifferServicer"]

Context = grpc.aio.ServicerContext[Any, Any]

# The role of profile-sync itself and its operators (see the access table in the README).
OPERATOR_ROLE: Final = "Profiles.Sync"


SERVICE_NAME: str = differ_pb2.DESCRIPTOR.services_by_name["SnapshotDiffer"].full_name


class SnapshotDifferServicer(differ_pb2_grpc.SnapshotDifferServicer):
    def __init__(self, settings: DifferSettings, runner: SyncRunner) -> None:
        self._settings = settings
        self._runner = runner
        self._listing = SyncedListing(runner.store, settings.shard_count)

    async def StartSync(
        self, request: differ_pb2.StartSyncRequest, context: Context
    ) -> differ_pb2.SyncRun:
        index, count = self._layout(request)
        return await self._runner.start(index, count, dry_run=request.dry_run)

    def _layout(self, request: differ_pb2.StartSyncRequest) -> tuple[int, int]:
        """The shard a start may run: (index, count).

        Only the operator chooses shards. A layout the deployment does not use
        has no baseline, so its run would publish every user of it as created
        again and keep another full baseline; so the LOB app (Profiles.Read)
        runs this deployment's own shard, and naming another shard needs
        Profiles.Sync and the configured shard count.
        """
        own = (self._settings.shard_index, self._settings.shard_count)
        if request.shard_count <= 1 and request.shard_index == 0:
            return own  # no shard asked for
        index, count = request.shard_index, request.shard_count
        if count < 1 or index >= count:
            raise InvalidArgument(f"shardIndex must be below shardCount ({count}), got {index}")
        if (index, count) == own:
            return own
        roles = current_principal().roles
        if OPERATOR_ROLE not in roles:
            raise PermissionDenied(
                f"choosing the shard (shardIndex {index}, shardCount {count}) needs the app "
                f"role {OPERATOR_ROLE}; leave shardIndex and shardCount out to sync this "
                f"deployment's shard (shard {own[0]} of {own[1]})"
            )
        if count != own[1]:
            raise InvalidArgument(
                f"shardCount must be this deployment's shard count (SHARD_COUNT={own[1]}), "
                f"got {count}: a sync of another layout would publish its users again"
            )
        return index, count

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


def binding(servicer: differ_pb2_grpc.SnapshotDifferServicer) -> ServiceBinding:
    """The servicer as a ServiceBinding for create_server/run_service."""

    def register(server: grpc.aio.Server) -> None:
        differ_pb2_grpc.add_SnapshotDifferServicer_to_server(servicer, server)

    return ServiceBinding(SERVICE_NAME, register)
