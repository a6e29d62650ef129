"""Graph's quotas as a user of the extender meets them: the tenant's tier by
default, writes refused by us (not by Graph) once the write quota is spent,
and Graph's own answers (long Retry-After, 202 Accepted) taken as documented."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from devtools.devstack.emulator import running_emulator
from devtools.devstack.lob_client import emulator_http, emulator_token
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from profilesync.v1 import extender_pb2
from services.common.auth import Principal
from services.common.entra import EntraSettings, MsalTokens
from services.common.errors import RateLimited
from services.profile_extender.graph_client import GraphClient
from services.profile_extender.quota_tier import TenantQuota
from services.profile_extender.rate_budget import RateBudget
from services.profile_extender.settings import GraphSettings
from services.profile_extender.updates import ProfileUpdater
from services.profile_extender.write_budget import WriteBudget


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """The budgets are shared through Redis: on one node and on a cluster alike."""
    return any_redis_url


SHARE = 0.97


def settings(graph_url: str, ca_file: str | None = None, attempts: int = 3) -> GraphSettings:
    return GraphSettings(
        graph_url=graph_url,
        ca_bundle=ca_file,
        max_concurrency=256,
        max_attempts=attempts,
        request_timeout_seconds=30,
        quota_per_10s=None,
        budget_share=SHARE,
    )


async def test_the_quota_follows_the_tenants_size_for_every_replica(
    redis_client: aioredis.Redis,
) -> None:
    """3,500 / 5,000 / 8,000 resource units per 10 s under 50, up to 500 and over
    500 users (https://learn.microsoft.com/graph/throttling-limits, identity and access)."""
    budget = RateBudget(redis_client, "test:tier-budget", budget_per_10s=1)
    quota = TenantQuota(redis_client, "test:tier", budget, share=SHARE, explicit=None)
    assert budget.budget_per_10s == int(3500 * SHARE)  # nothing known: the smallest tier
    await quota.learn(120, complete=True)
    assert budget.budget_per_10s == int(5000 * SHARE)
    # A listing under way that has passed 500 users raises the tier at once...
    await quota.learn(999, complete=False)
    assert budget.budget_per_10s == int(8000 * SHARE)
    # ...and another replica (or the next run) starts from what was learnt.
    other_budget = RateBudget(redis_client, "test:tier-budget", budget_per_10s=1)
    other = TenantQuota(redis_client, "test:tier", other_budget, share=SHARE, explicit=None)
    await other.refresh()
    assert other_budget.budget_per_10s == int(8000 * SHARE)
    # A complete listing of a tenant that shrank lowers it; a partial count never does.
    await quota.learn(30, complete=True)
    assert budget.budget_per_10s == int(3500 * SHARE)
    await quota.learn(10, complete=False)
    assert budget.budget_per_10s == int(3500 * SHARE)
    # An explicit GRAPH_QUOTA_PER_10S wins over anything learnt.
    pinned_budget = RateBudget(redis_client, "test:tier-budget", budget_per_10s=1)
    pinned = TenantQuota(redis_client, "test:tier", pinned_budget, share=SHARE, explicit=2000)
    await pinned.learn(100_000, complete=True)
    await pinned.refresh()
    assert pinned_budget.budget_per_10s == int(2000 * SHARE)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_emulator(tmp_path_factory.mktemp("emulator"), users=1200) as ready:
        yield ready


async def test_enumerating_a_large_tenant_gives_the_large_tier(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    entra = EntraSettings(
        tenant_id=emulator["tenantId"],
        client_id=DEFAULT_CLIENT_ID,
        authority=emulator["authority"],
        ca_bundle=emulator["caFile"],
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    budget = RateBudget(redis_client, "test:enum-budget", budget_per_10s=1)
    quota = TenantQuota(redis_client, "test:enum-users", budget, share=SHARE, explicit=None)
    graph = GraphClient(
        settings(f"{emulator['url']}/v1.0", emulator["caFile"]),
        MsalTokens(entra),
        budget=budget,
        quota=quota,
    )
    try:
        ids = [user_id async for user_id in graph.iter_user_ids()]
    finally:
        await graph.aclose()
    assert len(ids) == 1200
    assert budget.budget_per_10s == int(8000 * SHARE)
    assert int(await redis_client.get("test:enum-users")) == 1200


async def test_writes_past_the_write_quota_are_refused_at_once_with_retry_after(
    redis_client: aioredis.Redis,
) -> None:
    """Graph allows 3,000 writes per 150 s per app per tenant
    (https://learn.microsoft.com/graph/throttling-limits); here 10, over two replicas."""
    first = WriteBudget(redis_client, "test:writes", writes_per_window=10)
    second = WriteBudget(redis_client, "test:writes", writes_per_window=10)
    for index in range(10):
        await (first if index % 2 else second).admit()
    for replica in (first, second):
        with pytest.raises(RateLimited) as refused:
            await replica.admit()
        assert refused.value.retry_after_seconds is not None
        assert 140 <= refused.value.retry_after_seconds <= 150
        assert "write quota" in str(refused.value)


def app_tokens() -> MsalTokens:
    """Tokens for a Graph stand-in that answers anything: the app's token is not looked at."""

    class _Fixed(MsalTokens):
        def __init__(self) -> None:
            pass

        async def for_app(self, scopes: Any) -> str:
            return "app-token"

    return _Fixed()


def retry_after_waits(at_most: str) -> float:
    """Retry-After values seen so far, up to `at_most` seconds ("+Inf" for all)."""
    sample = REGISTRY.get_sample_value(
        "profilesync_graph_retry_after_seconds_bucket", {"le": at_most}
    )
    return sample or 0.0


async def test_a_long_retry_after_is_honoured_logged_and_counted(
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Graph's Retry-After is how long to wait (https://learn.microsoft.com/graph/throttling);
    ten minutes is waited, by every replica, not cut short. The emulator answers with
    at most its window, so a transport plays Graph here."""

    calls = 0

    def graph(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            429,
            headers={"Retry-After": "600"},
            json={"error": {"code": "TooManyRequests", "message": "slow down"}},
        )

    budget = RateBudget(redis_client, "test:long-wait", budget_per_10s=8000)
    client = GraphClient(
        settings("https://graph.test/v1.0", attempts=3),
        app_tokens(),
        budget=budget,
        transport=httpx.MockTransport(graph),
    )
    waits_before = retry_after_waits("+Inf")
    short_waits_before = retry_after_waits("300.0")
    caplog.set_level(logging.WARNING)
    try:
        # The LOB caller is not held for ten minutes: told at once how long to wait,
        # and Graph is not asked again before then.
        with pytest.raises(RateLimited) as told:
            await client.get_user("someone")
    finally:
        await client.aclose()
    assert told.value.retry_after_seconds is not None
    assert 590 <= told.value.retry_after_seconds <= 601  # whole seconds, rounded up
    assert calls == 1
    other_replica = RateBudget(redis_client, "test:long-wait", budget_per_10s=8000)
    assert await other_replica.reserve(1) >= 590
    assert "wait 600 s" in caplog.text
    # /metrics shows a wait of over five minutes.
    assert retry_after_waits("+Inf") == waits_before + 1
    assert retry_after_waits("300.0") == short_waits_before


async def test_a_read_answered_202_accepted_is_asked_again(redis_client: aioredis.Redis) -> None:
    """ "This method returns 202 Accepted when the request has been processed successfully
    but the server requires more time to complete related background operations"
    (https://learn.microsoft.com/graph/api/user-get). The emulator never answers 202, so
    a transport plays Graph: first 202 with no user, then the user; in a $batch, one
    item 202 with no body, then 200."""
    answers: dict[str, int] = {}
    user = {"id": "u1", "userPrincipalName": "u1@contoso.test", "displayName": "U One"}

    def graph(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        answers[key] = answers.get(key, 0) + 1
        if key.endswith("/$batch"):
            first = answers[key] == 1
            return httpx.Response(
                200,
                json={
                    "responses": [
                        {
                            "id": "0",
                            "status": 202 if first else 200,
                            "headers": {"Retry-After": "0"},
                            **({} if first else {"body": user}),
                        }
                    ]
                },
            )
        if answers[key] == 1:
            return httpx.Response(202, headers={"Retry-After": "0"})
        return httpx.Response(200, json=user)

    client = GraphClient(
        settings("https://graph.test/v1.0"),
        app_tokens(),
        budget=RateBudget(redis_client, "test:accepted", budget_per_10s=8000),
        transport=httpx.MockTransport(graph),
    )
    try:
        assert (await client.get_user("u1"))["id"] == "u1"
        [result] = await client.get_users(["u1"])
    finally:
        await client.aclose()
    assert result.user == user
    assert answers == {"/v1.0/users/u1": 2, "/v1.0/$batch": 2}


def entra(emulator: dict[str, Any]) -> EntraSettings:
    return EntraSettings(
        tenant_id=emulator["tenantId"],
        client_id=DEFAULT_CLIENT_ID,
        authority=emulator["authority"],
        ca_bundle=emulator["caFile"],
        client_secret=DEFAULT_CLIENT_SECRET,
    )


async def test_a_burst_of_updates_past_the_write_quota_never_meets_graphs_429(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    """A LOB bulk import, scaled down: Graph's write quota set to 30 per 150 s
    (3,000 in a tenant, https://learn.microsoft.com/graph/throttling-limits), 40
    updates offered at once by users of the tenant. The extender accepts what fits
    under its share and refuses the rest itself, with a Retry-After; Graph answers
    no 429, and every accepted update is in Graph."""
    with emulator_http(emulator["url"], emulator["caFile"]) as admin:
        admin.put(
            "/_emulator/config", json={"writeQuotaPer150s": 30, "quotaPer10s": 1_000_000}
        ).raise_for_status()
        admin.delete("/_emulator/stats").raise_for_status()
    tokens = MsalTokens(entra(emulator))
    budget = RateBudget(redis_client, "test:burst-budget", budget_per_10s=1_000_000)
    graph = GraphClient(
        settings(f"{emulator['url']}/v1.0", emulator["caFile"]), tokens, budget=budget
    )
    writes = WriteBudget(redis_client, "test:burst-writes", writes_per_window=int(30 * SHARE))
    updater = ProfileUpdater(graph, tokens, redis_client, writes)
    # 40 users no earlier run of this test (on another Redis) has imported into.
    users: list[dict[str, Any]] = []
    async for user_id in graph.iter_user_ids():
        user = await graph.get_user(user_id)
        if not str(user.get("aboutMe") or "").startswith("import "):
            users.append(user)
        if len(users) == 40:
            break

    async def update(user: dict[str, Any]) -> str:
        own_token = emulator_token(
            emulator["url"], emulator["caFile"], user=user["userPrincipalName"]
        )
        caller = Principal(
            user["id"],
            user["userPrincipalName"],
            True,
            frozenset(),
            frozenset({"Profiles.ReadWrite"}),
            own_token,
        )
        request = extender_pb2.UpdateProfileRequest(id=user["id"], about_me=f"import {user['id']}")
        try:
            await updater.update(request, caller)
        except RateLimited as refused:
            assert refused.retry_after_seconds and refused.retry_after_seconds > 100
            return "refused"
        return "written"

    try:
        outcomes = await asyncio.gather(*(update(user) for user in users))
        with emulator_http(emulator["url"], emulator["caFile"]) as admin:
            seen = admin.get("/_emulator/stats").json()
            in_graph = [
                admin.get(f"/_emulator/users/{user['id']}").json()["aboutMe"] for user in users
            ]
            admin.put("/_emulator/config", json={"writeQuotaPer150s": 3000}).raise_for_status()
    finally:
        await graph.aclose()
    assert outcomes.count("written") == int(30 * SHARE) == 29
    assert outcomes.count("refused") == 40 - 29
    assert seen["throttled"] == 0 and seen["writes"] == 29, seen
    written = [user for user, outcome in zip(users, outcomes, strict=True) if outcome == "written"]
    assert all(
        text == f"import {user['id']}"
        for user, text in zip(users, in_graph, strict=True)
        if user in written
    )
    assert sum((text or "").startswith("import ") for text in in_graph) == 29
