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
from services.profile_extender.convert import profile_from_graph
from services.profile_extender.graph_client import BATCH_LIMIT, FetchResult, GraphClient
from services.profile_extender.updates import ProfileUpdater
from services.search.grpc_api import search_profiles
from services.search.index import SearchIndex

__all__ = ["ProfileExtenderServicer"]

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

# Batches read ahead of what the stream has sent; bounds memory when the
# caller reads slower than Graph answers (the stream's flow control).
READ_AHEAD_BATCHES = 16
# Batches being read at once. Most of them are usually waiting out a
# Retry-After for a few items, which costs nothing; requests actually in
# flight are bounded separately by the client's adaptive limit.
BATCHES_IN_PROGRESS = 128


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def distinct_ids(ids: Iterable[str]) -> list[str]:
    """`ids` without repeats, compared without regard to case, first spelling kept."""
    seen: dict[str, str] = {}
    for user_id in ids:
        seen.setdefault(user_id.lower(), user_id)
    return list(seen.values())


class ProfileExtenderServicer(extender_pb2_grpc.ProfileExtenderServicer):
    def __init__(self, graph: GraphClient, updater: ProfileUpdater, index: SearchIndex) -> None:
        self._graph = graph
        self._updater = updater
        self._index = index

    async def SearchProfiles(
        self, request: extender_pb2.SearchProfilesRequest, context: Context
    ) -> extender_pb2.SearchProfilesResponse:
        return await search_profiles(self._index, request, context)

    async def UpdateProfile(
        self, request: extender_pb2.UpdateProfileRequest, context: Context
    ) -> profile_pb2.Profile:
        profile = await self._updater.update(request, current_principal())
        # Findable by its new content at once, not only after the next sync.
        await self._index.apply([profile_to_dict(profile)], [])
        return profile

    async def GetProfile(
        self, request: extender_pb2.GetProfileRequest, context: Context
    ) -> profile_pb2.Profile:
        return profile_from_graph(await self._graph.get_user(request.id), _now())

    async def BatchGetProfiles(
        self, request: extender_pb2.BatchGetProfilesRequest, context: Context
    ) -> extender_pb2.BatchGetProfilesResponse:
        """Profiles in the order their ids are first mentioned, each once.

        A repeated id is read from Graph once, whatever its letter case (object
        ids and user principal names are case-insensitive), so 100 copies of one
        id cost one read of the tenant's quota, not 100. A user asked for by
        both object id and user principal name is read twice but listed once.
        """
        response = extender_pb2.BatchGetProfilesResponse()
        now = _now()
        listed: set[str] = set()
        for result in await self._graph.get_users(distinct_ids(request.ids)):
            if result.user is not None:
                profile = profile_from_graph(result.user, now)
                if profile.id not in listed:
                    listed.add(profile.id)
                    response.profiles.append(profile)
            elif result.not_found:
                response.not_found.append(result.user_id)
            else:
                raise NotFound(f"user {result.user_id!r} could not be read: {result.error}")
        return response

    async def ListProfiles(
        self, request: extender_pb2.ListProfilesRequest, context: Context
    ) -> AsyncIterator[extender_pb2.ListProfilesItem]:
        queue: asyncio.Queue[list[FetchResult] | None] = asyncio.Queue(READ_AHEAD_BATCHES)
        counts = {"users": 0}
        reader = asyncio.create_task(self._read_shard(request, queue, counts))
        profiles = failures = 0
        try:
            while (results := await queue.get()) is not None:
                now = _now()
                for result in results:
                    if result.user is not None:
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
                    users=counts["users"], profiles=profiles, failures=failures
                )
            )
        finally:
            reader.cancel()

    async def _read_shard(
        self,
        request: extender_pb2.ListProfilesRequest,
        queue: asyncio.Queue[list[FetchResult] | None],
        counts: dict[str, int],
    ) -> None:
        """Enumerates the shard's users and reads them, batches in parallel."""
        in_flight: set[asyncio.Task[None]] = set()
        limit = asyncio.Semaphore(BATCHES_IN_PROGRESS)

        async def read(ids: list[str]) -> None:
            try:
                try:
                    results = await self._graph.get_users(ids, bulk=True)
                except ProfileSyncError as error:
                    # A whole $batch kept failing: its users are reported as
                    # failed, the rest of the shard goes on.
                    results = [FetchResult(user_id, error=str(error)) for user_id in ids]
                await queue.put(results)
            finally:
                limit.release()

        pending: list[str] = []
        try:
            # A sync's reads: the LOB app's own reads go first (see RateBudget).
            async for user_id in self._graph.iter_user_ids(bulk=True):
                if shard_of(user_id, request.shard_count) != request.shard_index:
                    continue
                counts["users"] += 1
                pending.append(user_id)
                if len(pending) == BATCH_LIMIT:
                    await limit.acquire()
                    in_flight.add(asyncio.create_task(read(pending)))
                    pending = []
            if pending:
                await limit.acquire()
                in_flight.add(asyncio.create_task(read(pending)))
            await asyncio.gather(*in_flight)
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
