"""Reading a whole tenant from the Graph emulator: every profile exactly
once through throttling and failures, and inside the shared budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio as aioredis

from devtools.devstack.emulator import running_emulator
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from devtools.local_grpc import start_server
from profilesync.v1 import extender_pb2, extender_pb2_grpc
from services.common.entra import EntraSettings, MsalTokens
from services.common.tls import client_ssl_context
from services.profile_extender.graph_client import GraphClient
from services.profile_extender.rate_budget import RateBudget
from services.profile_extender.servicer import ProfileExtenderServicer, binding
from services.profile_extender.settings import GraphSettings

USERS = 5000


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_emulator(
        tmp_path_factory.mktemp("emulator"), users=USERS, extra=["--seed", "3"]
    ) as ready:
        yield ready


def admin(emulator: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=emulator["url"], verify=client_ssl_context(emulator["caFile"]), trust_env=False
    )


def configure(emulator: dict[str, Any], **config: Any) -> dict[str, Any]:
    with admin(emulator) as client:
        client.put("/_emulator/config", json=config).raise_for_status()
        client.delete("/_emulator/stats").raise_for_status()
        return dict(client.get("/_emulator/config").json())


def stats(emulator: dict[str, Any]) -> dict[str, Any]:
    with admin(emulator) as client:
        return dict(client.get("/_emulator/stats").json())


def graph_client(
    emulator: dict[str, Any], redis: aioredis.Redis, *, budget: int, attempts: int = 12
) -> GraphClient:
    entra = EntraSettings(
        tenant_id=emulator["tenantId"],
        client_id=DEFAULT_CLIENT_ID,
        authority=emulator["authority"],
        ca_bundle=emulator["caFile"],
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    settings = GraphSettings(
        graph_url=f"{emulator['url']}/v1.0",
        ca_bundle=emulator["caFile"],
        max_concurrency=16,
        max_attempts=attempts,
        request_timeout_seconds=30,
        quota_per_10s=budget,
        budget_share=1.0,
    )
    shared = RateBudget(redis, "test:graph-budget", budget_per_10s=budget)
    return GraphClient(settings, MsalTokens(entra), budget=shared)


@pytest.fixture
async def extender_stub(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> AsyncIterator[extender_pb2_grpc.ProfileExtenderStub]:
    graph = graph_client(emulator, redis_client, budget=1_000_000)
    servicer = ProfileExtenderServicer(graph, updater=None, index=None, store=None)  # type: ignore[arg-type]
    server, port = await start_server(binding(servicer))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield extender_pb2_grpc.ProfileExtenderStub(channel)
    await server.stop(None)
    await graph.aclose()


async def test_every_profile_arrives_once_through_a_storm_of_429s_and_503s(
    emulator: dict[str, Any], extender_stub: extender_pb2_grpc.ProfileExtenderStub
) -> None:
    configure(emulator, failureRate=0.3, failureStatuses=[429, 503], quotaPer10s=1_000_000, seed=5)
    ids: list[str] = []
    summary = None
    # One shard of ten: some 500 profiles make the point. Every 429 pauses the
    # whole app for its Retry-After (0.5 to 3 s here), as Graph asks, so the
    # storm costs time rather than profiles.
    request = extender_pb2.ListProfilesRequest(shard_index=1, shard_count=10)
    async for item in extender_stub.ListProfiles(request):
        kind = item.WhichOneof("item")
        if kind == "profile":
            ids.append(item.profile.id)
            assert item.profile.version and item.profile.user_principal_name
        elif kind == "failure":
            pytest.fail(f"profile lost: {item.failure}")
        else:
            summary = item.summary
    assert summary is not None and summary.failures == 0
    assert len(ids) == len(set(ids)) == summary.users > USERS / 10 * 0.8
    seen = stats(emulator)
    # The storm really happened: about 30% of some 500 reads were refused.
    assert seen["injectedFailures"] >= len(ids) // 5, seen


async def test_two_replicas_together_stay_inside_the_budget(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    quota = 600
    configure(emulator, failureRate=0.0, quotaPer10s=quota)
    first = graph_client(emulator, redis_client, budget=int(quota * 0.95))
    second = graph_client(emulator, redis_client, budget=int(quota * 0.95))
    ids = [user_id async for user_id in first.iter_user_ids()][:640]
    results = await asyncio.gather(first.get_users(ids[:320]), second.get_users(ids[320:]))
    fetched = [r for group in results for r in group]
    assert all(r.user is not None for r in fetched)
    seen = stats(emulator)
    assert seen["throttled"] == 0, seen
    assert seen["peakResourceUnitsPer10s"] <= quota
    await first.aclose()
    await second.aclose()


async def test_shards_split_the_tenant_without_overlap(
    emulator: dict[str, Any], extender_stub: extender_pb2_grpc.ProfileExtenderStub
) -> None:
    configure(emulator, failureRate=0.0, quotaPer10s=1_000_000)
    shards: list[set[str]] = []
    for index in range(3):
        request = extender_pb2.ListProfilesRequest(shard_index=index, shard_count=3)
        shards.append(
            {
                item.profile.id
                async for item in extender_stub.ListProfiles(request)
                if item.WhichOneof("item") == "profile"
            }
        )
    assert sum(len(shard) for shard in shards) == USERS
    assert len(set().union(*shards)) == USERS
    assert all(len(shard) > USERS / 3 * 0.8 for shard in shards)


async def test_a_profile_is_sent_at_most_max_attempts_times_when_whole_batches_fail(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    configure(emulator, failureRate=0.0, dropRate=0.0, quotaPer10s=1_000_000)
    client = graph_client(emulator, redis_client, budget=1_000_000, attempts=3)
    ids = [user_id async for user_id in client.iter_user_ids()][:20]  # one $batch
    # Every connection is cut: each send of the batch fails as a whole.
    configure(emulator, dropRate=1.0, seed=1)
    try:
        results = await client.get_users(ids)
        dropped = stats(emulator)["droppedConnections"]
    finally:
        configure(emulator, dropRate=0.0)
        await client.aclose()
    assert [r.user_id for r in results] == ids
    assert all(r.user is None and r.error for r in results)
    assert "talking to Graph after 3 attempts" in results[0].error
    # GRAPH_MAX_ATTEMPTS is per profile: three sends of the batch, not three times three.
    assert dropped == 3


async def test_one_replicas_429_on_batch_items_slows_the_other_replica(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    """Graph reports throttling of the requests inside a `$batch` item by item, each
    with its own 429 and Retry-After (https://learn.microsoft.com/graph/json-batching),
    and the quota is the app's in the tenant, whichever replica spends it
    (https://learn.microsoft.com/graph/throttling-limits): a replica that never saw
    the 429 must wait as well."""
    configure(emulator, failureRate=0.0, quotaPer10s=1_000_000)
    first = graph_client(emulator, redis_client, budget=1_000_000, attempts=1)
    second = graph_client(emulator, redis_client, budget=1_000_000)
    ids = [user_id async for user_id in first.iter_user_ids()][:40]
    # Nothing holds the second replica back yet.
    assert (await asyncio.wait_for(second.get_users(ids[:1]), 5.0))[0].user is not None
    # A new quota starts from an empty window: 20 reads fit, the next 20 do not.
    configure(emulator, quotaPer10s=20)
    try:
        results = await first.get_users(ids)
        throttled_by_graph = stats(emulator)["throttled"]
        # The second replica, which saw no 429, now waits for the first one's.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(second.get_users(ids[:1]), 5.0)
    finally:
        configure(emulator, quotaPer10s=1_000_000)
        await first.aclose()
        await second.aclose()
    failed = [r for r in results if r.error]
    assert len(failed) == 20 and all("429" in (r.error or "") for r in failed), failed[:1]
    assert throttled_by_graph == 20  # per item, inside a $batch answered 200
