"""The ProfileExtender gRPC service."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc

from profilesync.v1 import extender_pb2, extender_pb2_grpc, profile_pb2
from services.common.auth import current_principal
from services.common.errors import NotFound, ProfileSyncError
from services.common.profile_messages import profile_to_dict
from services.common.profiles import shard_of
from services.common.server import ServiceBinding
from services.profile_extender.absent_profiles import AbsentProfiles
from services.profile_extender.convert import profile_from_graph
from services.profile_extender.graph_client import BATCH_LIMIT, FetchResult, GraphClient
from services.profile_extender.stored_profiles import StoredProfiles
from services.profile_extender.updates import ProfileUpdater
from services.search.grpc_api import search_profiles
from services.search.index import SearchIndex

__all__ = ["ProfileExtenderServicer"]

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

# Batches read ahead of what the stream has sent; bounds memory when the
# caller reads slower than Graph answers (the stream's flow control). Answers
# arrive in bursts when Graph is slow: a second's worth at the largest quota.
READ_AHEAD_BATCHES = 64
# Batches being read at once, per request Graph may have in flight (see
# AdaptiveLimit): as many again may wait out a Retry-After for a few items,
# which costs nothing, so those never starve the requests that can go.
BATCHES_PER_REQUEST_IN_FLIGHT = 2


# UpdateProfile's answer names the version it was written over (the version
# read for the expectedVersion check): `Profile-Replaced-Version` over REST.
REPLACED_VERSION_METADATA = "profile-replaced-version"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def distinct_ids(ids: Iterable[str]) -> list[str]:
    """`ids` without repeats, compared without regard to case, first spelling kept."""
    seen: dict[str, str] = {}
    for user_id in ids:
        seen.setdefault(user_id.lower(), user_id)
    return list(seen.values())


SERVICE_NAME: str = extender_pb2.DESCRIPTOR.services_by_name["ProfileExtender"].full_name


class ProfileExtenderServicer(extender_pb2_grpc.ProfileExtenderServicer):
    def __init__(
        self,
        graph: GraphClient,
        updater: ProfileUpdater,
        index: SearchIndex,
        store: StoredProfiles,
        absent: AbsentProfiles | None = None,
    ) -> None:
        self._graph = graph
        self._updater = updater
        self._index = index
        self._store = store
        # Users without a SharePoint profile, not read again until their re-check.
        self._absent = absent

    async def SearchProfiles(
        self, request: extender_pb2.SearchProfilesRequest, context: Context
    ) -> extender_pb2.SearchProfilesResponse:
        return await search_profiles(self._index, request, context)

    async def UpdateProfile(
        self, request: extender_pb2.UpdateProfileRequest, context: Context
    ) -> profile_pb2.Profile:
        result = await self._updater.update(request, current_principal())
        if result.replaced_version:
            # A header through the gateway: the profile in the body stays the
            # one resource every other call returns.
            await context.send_initial_metadata(
                ((REPLACED_VERSION_METADATA, result.replaced_version),)
            )
        profile = result.profile
        profile.synced_at.CopyFrom(profile.fetch_time)
        # Read back and findable with its new content at once, not only after the next sync.
        await self._store.remember_lob_edit(profile)
        await self._index.apply([profile_to_dict(profile)], [])
        return profile

    async def GetProfile(
        self, request: extender_pb2.GetProfileRequest, context: Context
    ) -> profile_pb2.Profile:
        response = await self._read([request.id], request.source)
        if response.not_found:
            raise NotFound(f"user {request.id!r} not found")
        return response.profiles[0]

    async def BatchGetProfiles(
        self, request: extender_pb2.BatchGetProfilesRequest, context: Context
    ) -> extender_pb2.BatchGetProfilesResponse:
        return await self._read(
            list(request.ids), request.source, share_percent=request.budget_share_percent
        )

    async def _read(
        self, ids: list[str], source: int, *, share_percent: int = 0
    ) -> extender_pb2.BatchGetProfilesResponse:
        """Profiles in the order their ids are first mentioned, each once, from
        the store unless `source` is GRAPH; what the store lacks is read from
        Graph (read-through).

        A repeated id is read once, whatever its letter case (object ids and
        user principal names are case-insensitive), so 100 copies of one id
        cost at most one read of the tenant's quota, not 100. A user asked for
        by both object id and user principal name is listed once.
        """
        wanted = distinct_ids(ids)
        found = {} if source == extender_pb2.GRAPH else await self._store.get(wanted)
        missing = [requested for requested in wanted if requested not in found]
        if missing:
            now = _now()
            reads = await self._graph.get_users(
                missing, bulk=share_percent > 0, share_percent=share_percent
            )
            for result in reads:
                if result.user is not None:
                    profile = profile_from_graph(result.user, now)
                    profile.synced_at.CopyFrom(profile.fetch_time)
                    found[result.user_id] = profile
                    if source != extender_pb2.GRAPH:
                        await self._store.remember_read_through(profile)
                elif result.error is not None:
                    raise NotFound(f"user {result.user_id!r} could not be read: {result.error}")
                elif result.no_profile is not None:
                    raise NotFound(
                        f"user {result.user_id!r} has no SharePoint profile: {result.no_profile}"
                    )
        response = extender_pb2.BatchGetProfilesResponse()
        listed: set[str] = set()
        for requested in wanted:
            if requested in found:
                profile = found[requested]
                if profile.id not in listed:
                    listed.add(profile.id)
                    response.profiles.append(profile)
            else:
                response.not_found.append(requested)
        return response

    async def ListProfiles(
        self, request: extender_pb2.ListProfilesRequest, context: Context
    ) -> AsyncIterator[extender_pb2.ListProfilesItem]:
        queue: asyncio.Queue[list[FetchResult] | None] = asyncio.Queue(READ_AHEAD_BATCHES)
        counts: dict[str, float] = {"users": 0, "read_seconds": 0.0}
        # When a remembered "no profile" answer was given (fresh ones: now).
        checked: dict[str, dt.datetime] = {}
        reader = asyncio.create_task(self._read_shard(request, queue, counts, checked))
        profiles = failures = without_profile = 0
        try:
            while (results := await queue.get()) is not None:
                now = _now()
                for result in results:
                    if result.no_profile is not None:
                        without_profile += 1
                        absent = extender_pb2.ProfileAbsent(
                            user_id=result.user_id, reason=result.no_profile
                        )
                        absent.checked_time.FromDatetime(checked.pop(result.user_id, now))
                        yield extender_pb2.ListProfilesItem(no_profile=absent)
                    elif result.user is not None:
                        profiles += 1
                        yield extender_pb2.ListProfilesItem(
                            profile=profile_from_graph(result.user, now)
                        )
                    elif result.error is not None:
                        failures += 1
                        yield extender_pb2.ListProfilesItem(
                            failure=extender_pb2.ProfileFailure(
                                user_id=result.user_id, reason=result.error
                            )
                        )
            await reader  # re-raises an enumeration failure: no summary then
            yield extender_pb2.ListProfilesItem(
                summary=extender_pb2.ListProfilesSummary(
                    users=int(counts["users"]),
                    profiles=profiles,
                    failures=failures,
                    without_profile=without_profile,
                    read_seconds=counts["read_seconds"],
                )
            )
        finally:
            reader.cancel()

    async def _read_shard(
        self,
        request: extender_pb2.ListProfilesRequest,
        queue: asyncio.Queue[list[FetchResult] | None],
        counts: dict[str, float],
        checked: dict[str, dt.datetime],
    ) -> None:
        """Enumerates the shard's users and reads them, batches in parallel:
        as fast as the budget allows, or (a paced sweep) evenly over
        `spread_over_seconds`, once the whole shard is enumerated. Users known
        to have no profile are reported without a read."""
        in_flight: set[asyncio.Task[None]] = set()
        limit = asyncio.Semaphore(BATCHES_PER_REQUEST_IN_FLIGHT * self._graph.concurrency.maximum)
        loop = asyncio.get_running_loop()
        first_read = 0.0

        async def read(ids: list[str]) -> None:
            try:
                known = await self._absent.known(ids) if self._absent is not None else {}
                wanted = [user_id for user_id in ids if user_id not in known]
                try:
                    results = await self._graph.get_users(wanted, bulk=True) if wanted else []
                except ProfileSyncError as error:
                    # A whole $batch kept failing: its users are reported as
                    # failed, the rest of the shard goes on.
                    results = [FetchResult(user_id, error=str(error)) for user_id in wanted]
                if self._absent is not None:
                    await self._absent.remember(results)
                for user_id, (reason, when) in known.items():
                    checked[user_id] = when
                    results.append(FetchResult(user_id, no_profile=reason))
                await queue.put(results)
            finally:
                limit.release()

        async def start_reading(ids: list[str]) -> None:
            nonlocal first_read
            await limit.acquire()
            first_read = first_read or loop.time()
            in_flight.add(asyncio.create_task(read(ids)))

        try:
            # A sync's reads: the LOB app's own reads go first (see RateBudget).
            shard_ids = (
                user_id
                async for user_id in self._graph.iter_user_ids(bulk=True)
                if shard_of(user_id, request.shard_count) == request.shard_index
            )
            if request.spread_over_seconds > 0:
                everyone = [user_id async for user_id in shard_ids]
                counts["users"] = len(everyone)
                batches = [
                    everyone[i : i + BATCH_LIMIT] for i in range(0, len(everyone), BATCH_LIMIT)
                ]
                # Batch k goes at start + k * seconds per batch: the last one
                # leaves one batch's time before the interval ends.
                step = request.spread_over_seconds / max(1, len(batches))
                started = loop.time()
                for index, ids in enumerate(batches):
                    await asyncio.sleep(max(0.0, started + index * step - loop.time()))
                    await start_reading(ids)
            else:
                pending: list[str] = []
                async for user_id in shard_ids:
                    counts["users"] += 1
                    pending.append(user_id)
                    if len(pending) == BATCH_LIMIT:
                        await start_reading(pending)
                        pending = []
                if pending:
                    await start_reading(pending)
            await asyncio.gather(*in_flight)
            counts["read_seconds"] = loop.time() - first_read if first_read else 0.0
        except asyncio.CancelledError:
            # The caller went away: nobody reads the queue any more.
            for task in in_flight:
                task.cancel()
            raise
        except Exception:
            for task in in_flight:
                task.cancel()
            await queue.put(None)
            raise
        await queue.put(None)


def binding(servicer: extender_pb2_grpc.ProfileExtenderServicer) -> ServiceBinding:
    """The servicer as a ServiceBinding for create_server/run_service."""

    def register(server: grpc.aio.Server) -> None:
        extender_pb2_grpc.add_ProfileExtenderServicer_to_server(servicer, server)

    return ServiceBinding(SERVICE_NAME, register)
