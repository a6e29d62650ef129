"""A differ wired to a scripted extender (a real gRPC server on loopback that
streams the profiles a test gives it) and the real notifier over Redis."""

from __future__ import annotations

import asyncio
import copy
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from devtools.local_grpc import LOOPBACK_SERVER, start_server
from profilesync.v1 import extender_pb2, extender_pb2_grpc, notifier_pb2, notifier_pb2_grpc
from services.common.entra import EntraSettings
from services.common.profiles import shard_of
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.servicer import LobNotifierServicer, binding
from services.profile_extender.servicer import binding as extender_binding
from services.search.index import SearchIndex
from services.snapshot_differ.object_store import LocalDirectoryStore
from services.snapshot_differ.run import SyncRunner
from services.snapshot_differ.settings import DifferSettings

Context = grpc.aio.ServicerContext[Any, Any]

# The search index's scripts touch keys that do not share a hash slot yet, so
# on a Redis Cluster the differ runs here without filing for search. Once
# every key of services/search/redis_keys.py carries one hash tag, set this to True:
# the cluster runs of the differ suite then file for search too.
SEARCH_RUNS_ON_CLUSTER = True


def on_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)


def search_missing_on(redis: Any) -> bool:
    """True where the differ cannot file for search (see SEARCH_RUNS_ON_CLUSTER)."""
    return on_cluster(redis) and not SEARCH_RUNS_ON_CLUSTER


def skip_where_search_is_missing(redis: Any) -> None:
    """For tests of a differ that files for search (its process always does)."""
    if search_missing_on(redis):
        pytest.skip("the search index's keys do not share a hash slot yet (SEARCH_RUNS_ON_CLUSTER)")


def make_profile(index: int, **overrides: Any) -> dict[str, Any]:
    profile = {
        "id": f"00000000-0000-0000-0000-{index:012d}",
        "userPrincipalName": f"user{index}@contoso.onmicrosoft.com",
        "displayName": f"User {index}",
        "mail": f"user{index}@contoso.onmicrosoft.com",
        "jobTitle": "Engineer",
        "department": "R&D",
        "aboutMe": f"About user {index}",
        "skills": ["Python", f"Skill {index % 7}"],
        "pastProjects": ["Apollo"] if index % 2 else [],
        "schools": [],
        "interests": ["Chess"],
    }
    profile.update(overrides)
    return profile


@dataclass
class ScriptedExtender(extender_pb2_grpc.ProfileExtenderServicer):
    """Streams `profiles`; ids in `failing` are reported as failed, ids in
    `without_profile` as users without a SharePoint profile (with that reason);
    with `cut_after` set, the stream breaks after that many items (no summary).

    A paced sweep's read, as it goes on: `edits_after_listing` (user id ->
    profile) are made once every profile is streamed, and the summary waits
    `hold_seconds` more; BatchGetProfiles answers the re-reads meanwhile."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    without_profile: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    edits_after_listing: dict[str, dict[str, Any]] = field(default_factory=dict)
    hold_seconds: float = 0.0
    reread_ids: list[str] = field(default_factory=list)

    async def BatchGetProfiles(
        self, request: extender_pb2.BatchGetProfilesRequest, context: Context
    ) -> extender_pb2.BatchGetProfilesResponse:
        import datetime as dt

        from services.profile_extender.convert import profile_from_graph

        self.reread_ids.extend(request.ids)
        response = extender_pb2.BatchGetProfilesResponse()
        for user_id in request.ids:
            if user_id in self.profiles:
                profile = profile_from_graph(self.profiles[user_id], dt.datetime.now(dt.UTC))
                response.profiles.append(profile)
            else:
                response.not_found.append(user_id)
        return response

    async def ListProfiles(
        self, request: extender_pb2.ListProfilesRequest, context: Context
    ) -> AsyncIterator[extender_pb2.ListProfilesItem]:
        import datetime as dt

        from services.profile_extender.convert import profile_from_graph

        sent = 0
        users = failures = absent = 0
        for user_id, profile in sorted(self.profiles.items()):
            if shard_of(user_id, request.shard_count) != request.shard_index:
                continue
            users += 1
            if self.cut_after is not None and sent >= self.cut_after:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "extender went away")
            sent += 1
            if user_id in self.failing:
                failures += 1
                yield extender_pb2.ListProfilesItem(
                    failure=extender_pb2.ProfileFailure(user_id=user_id, reason="HTTP 503")
                )
            elif user_id in self.without_profile:
                absent += 1
                yield extender_pb2.ListProfilesItem(
                    no_profile=extender_pb2.ProfileAbsent(
                        user_id=user_id, reason=self.without_profile[user_id]
                    )
                )
            else:
                yield extender_pb2.ListProfilesItem(
                    profile=profile_from_graph(profile, dt.datetime.now(dt.UTC))
                )
        for user_id, edited in self.edits_after_listing.items():
            self.profiles[user_id] = copy.deepcopy(edited)
        if self.hold_seconds:
            await asyncio.sleep(self.hold_seconds)
        yield extender_pb2.ListProfilesItem(
            summary=extender_pb2.ListProfilesSummary(
                users=users,
                profiles=users - failures - absent,
                failures=failures,
                without_profile=absent,
            )
        )


class DifferHarness:
    def __init__(self, redis: aioredis.Redis, redis_url: str, store_dir: pathlib.Path) -> None:
        self.redis = redis
        self.redis_url = redis_url
        self.store_dir = store_dir
        self.extender = ScriptedExtender()
        self.change_log = ChangeLog(
            redis, "test:differ:changes", max_events=100_000, dedupe_ttl_seconds=600
        )
        self.cursor = ""

    async def __aenter__(self) -> DifferHarness:
        self.server, port = await start_server(
            extender_binding(self.extender), binding(LobNotifierServicer(self.change_log))
        )
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.settings = DifferSettings(
            server=LOOPBACK_SERVER,
            # In-process servers here check no token; the runner gets stubs directly.
            entra=EntraSettings("tenant", "client", "https://login.invalid/tenant", None),
            extender_addr=f"127.0.0.1:{port}",
            notifier_addr=f"127.0.0.1:{port}",
            redis_url=self.redis_url,
            snapshot_store=str(self.store_dir),
            shard_index=0,
            shard_count=1,
            part_size=7,
            publish_batch=5,
            compare_batch=4,
            lock_ttl_seconds=10,
            keep_snapshots=3,
        )
        self.runner = self.make_runner()
        return self

    def make_runner(self) -> SyncRunner:
        return SyncRunner(
            self.settings,
            self.redis,
            LocalDirectoryStore(self.store_dir),
            extender_pb2_grpc.ProfileExtenderStub(self.channel),
            notifier_pb2_grpc.LobNotifierStub(self.channel),
            search_index=None if search_missing_on(self.redis) else SearchIndex(self.redis),
        )

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close(None)
        await self.server.stop(None)

    def set_profiles(self, profiles: list[dict[str, Any]]) -> None:
        self.extender.profiles = {p["id"]: copy.deepcopy(p) for p in profiles}

    async def new_events(self) -> list[notifier_pb2.ChangeEvent]:
        """Events published since the last call (what a LOB app would read)."""
        events = await self.change_log.read(self.cursor or None, 10_000, 0)
        if events:
            self.cursor = events[-1].cursor
        return events
