"""A tenant with guests, rooms, shared mailboxes and unlicensed members: the
extender lists only users who can have a SharePoint profile (server-side
`$filter`, for the cost of list pages), reports one without a profile on the
first answer (never retried, never a failure) and reads them again only once
per re-check cycle.

What Graph answers for such users is not documented; the reported answers are
cited in services/profile_extender/profile_errors.py (microsoft-graph-docs
issues 4233 and 11344; msgraph-sdk-dotnet issue 580 for the transient one).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio as aioredis

from devtools.devstack.emulator import running_emulator
from devtools.graph_emulator.accounts import TenantMix, has_sharepoint_licence
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from devtools.graph_emulator.tenant import generate_users
from devtools.local_grpc import start_server
from profilesync.v1 import extender_pb2, extender_pb2_grpc
from services.common.entra import EntraSettings, MsalTokens
from services.common.settings import ConfigError, EnvReader
from services.common.tls import client_ssl_context
from services.profile_extender.absent_profiles import AbsentProfiles
from services.profile_extender.enumeration import UserScope
from services.profile_extender.graph_client import GraphClient
from services.profile_extender.profile_errors import no_profile_reason
from services.profile_extender.rate_budget import RateBudget
from services.profile_extender.servicer import ProfileExtenderServicer, binding
from services.profile_extender.settings import GraphSettings

USERS = 600
SEED = 4
DAY = 86_400


def tenant() -> list[dict[str, Any]]:
    """The emulator's users, generated here from the same seed and mix."""
    return generate_users(USERS, SEED, mix=TenantMix.realistic())


def licensed_members() -> list[dict[str, Any]]:
    return [u for u in tenant() if u["userType"] == "Member" and has_sharepoint_licence(u)]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_emulator(
        tmp_path_factory.mktemp("emulator"),
        users=USERS,
        extra=["--seed", str(SEED), "--graph-app-roles", "User.Read.All,GroupMember.Read.All"],
        tenant_mix="realistic",
    ) as ready:
        yield ready


def admin(emulator: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=emulator["url"], verify=client_ssl_context(emulator["caFile"]), trust_env=False
    )


def reset_stats(emulator: dict[str, Any]) -> None:
    with admin(emulator) as client:
        client.delete("/_emulator/stats").raise_for_status()


def stats(emulator: dict[str, Any]) -> dict[str, Any]:
    with admin(emulator) as client:
        return dict(client.get("/_emulator/stats").json())


class Extender:
    def __init__(self, stub: extender_pb2_grpc.ProfileExtenderStub) -> None:
        self.stub = stub

    async def list(self) -> tuple[dict[str, list[Any]], extender_pb2.ListProfilesSummary]:
        items: dict[str, list[Any]] = {"profile": [], "failure": [], "no_profile": []}
        summary = None
        async for item in self.stub.ListProfiles(extender_pb2.ListProfilesRequest()):
            kind = item.WhichOneof("item")
            if kind == "summary":
                summary = item.summary
            else:
                items[str(kind)].append(getattr(item, str(kind)))
        assert summary is not None
        return items, summary


async def serve(
    emulator: dict[str, Any], redis: aioredis.Redis, scope: UserScope, recheck: int
) -> AsyncIterator[Extender]:
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
        max_attempts=8,
        request_timeout_seconds=30,
        quota_per_10s=1_000_000,
        budget_share=1.0,
        users=scope,
    )
    graph = GraphClient(
        settings,
        MsalTokens(entra),
        budget=RateBudget(redis, "test:graph-budget", budget_per_10s=1_000_000),
    )
    servicer = ProfileExtenderServicer(
        graph,
        updater=None,  # type: ignore[arg-type]
        index=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        absent=AbsentProfiles(redis, recheck_seconds=recheck),
    )
    server, port = await start_server(binding(servicer))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Extender(extender_pb2_grpc.ProfileExtenderStub(channel))
    finally:
        await server.stop(None)
        await graph.aclose()


@pytest.fixture
async def members_extender(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> AsyncIterator[Extender]:
    async for extender in serve(emulator, redis_client, UserScope.MEMBERS, DAY):
        yield extender


async def test_only_licensed_members_are_listed_and_those_without_a_site_cost_one_read(
    emulator: dict[str, Any], members_extender: Extender
) -> None:
    members = licensed_members()
    with_site = {u["id"] for u in members if u["mySite"]}
    without_site = {u["id"] for u in members if not u["mySite"]}
    assert without_site and len(members) < USERS  # the tenant has the kinds this is about
    pages = math.ceil(len(members) / 999)

    reset_stats(emulator)
    items, summary = await members_extender.list()
    assert not items["failure"] and summary.failures == 0
    assert {p.id for p in items["profile"]} == with_site
    assert {a.user_id for a in items["no_profile"]} == without_site
    assert all("personal site" in a.reason for a in items["no_profile"])
    assert (summary.users, summary.profiles, summary.without_profile) == (
        len(members),
        len(with_site),
        len(without_site),
    )
    first = stats(emulator)
    # One read per listed user, none repeated: the refusals were not retried.
    assert first["batchItems"] == len(members)
    assert first["resourceUnits"] == len(members) + pages
    assert first["resourceUnits"] <= 1.1 * len(with_site) + pages

    reset_stats(emulator)
    again, summary = await members_extender.list()
    assert {a.user_id for a in again["no_profile"]} == without_site
    assert summary.without_profile == len(without_site) and summary.failures == 0
    second = stats(emulator)
    # Remembered until the re-check: no quota spent on them this time.
    assert second["batchItems"] == len(with_site)
    assert second["resourceUnits"] == len(with_site) + pages
    for absent in again["no_profile"]:
        assert absent.checked_time.ToSeconds() > 0


async def test_every_user_listed_and_each_without_a_profile_read_once(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    everyone = tenant()
    readable = {u["id"] for u in everyone if has_sharepoint_licence(u) and u["mySite"]}
    reset_stats(emulator)
    async for extender in serve(emulator, redis_client, UserScope.ALL, DAY):
        items, summary = await extender.list()
    assert summary.users == USERS and summary.failures == 0
    assert {p.id for p in items["profile"]} == readable
    assert len(items["no_profile"]) == USERS - len(readable)
    reasons = {a.reason.split(" (")[0] for a in items["no_profile"]}
    assert reasons == {"no SharePoint Online licence", "no personal site provisioned"}
    assert stats(emulator)["batchItems"] == USERS


async def test_a_user_is_read_again_after_the_recheck_and_enters_with_a_profile(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    member = next(u for u in licensed_members() if not u["mySite"])
    async for extender in serve(emulator, redis_client, UserScope.MEMBERS, 1):
        items, _ = await extender.list()
        assert member["id"] in {a.user_id for a in items["no_profile"]}
        with admin(emulator) as client:
            given = client.post(
                f"/_emulator/users/{member['id']}/sharepoint", json={"personalSite": True}
            )
            assert given.json()["hasProfile"] is True
        try:
            await asyncio.sleep(1.2)  # the one-second re-check cycle ends
            items, _ = await extender.list()
            assert member["id"] in {p.id for p in items["profile"]}
            assert member["id"] not in {a.user_id for a in items["no_profile"]}
        finally:
            with admin(emulator) as client:
                client.post(
                    f"/_emulator/users/{member['id']}/sharepoint", json={"personalSite": False}
                ).raise_for_status()


async def test_a_group_scope_lists_its_users_whoever_they_are(
    emulator: dict[str, Any], redis_client: aioredis.Redis
) -> None:
    everyone = tenant()
    member = next(u for u in everyone if has_sharepoint_licence(u) and u["mySite"])
    guest = next(u for u in everyone if u["userType"] == "Guest")
    with admin(emulator) as client:
        inner = client.post(
            "/_emulator/groups", json={"displayName": "Guests too", "members": [guest["id"]]}
        ).json()["id"]
        group = client.post(
            "/_emulator/groups",
            json={"displayName": "LOB users", "members": [member["id"], inner]},
        ).json()["id"]
    reset_stats(emulator)
    async for extender in serve(emulator, redis_client, UserScope.parse(f"group:{group}"), DAY):
        items, summary = await extender.list()
    assert (summary.users, summary.profiles, summary.without_profile) == (2, 1, 1)
    assert [p.id for p in items["profile"]] == [member["id"]]
    assert [a.user_id for a in items["no_profile"]] == [guest["id"]]
    assert stats(emulator)["byRoute"].get("GET /groups/{id}/members") == 1


def test_answers_that_mean_no_profile_and_those_that_do_not() -> None:
    def body(message: str, code: str = "BadRequest") -> dict[str, Any]:
        return {"error": {"code": code, "message": message}}

    assert no_profile_reason(400, body("Tenant does not have a SPO license.")) is not None
    site = no_profile_reason(500, body("Unable to retrieve user's mysite URL.", "UnknownError"))
    assert site is not None and "personal site" in site
    # SharePoint's transient refusal (msgraph-sdk-dotnet issue 580) is retried, not a state.
    busy = body(
        "Cannot complete this action.\n\nPlease try again.",
        "-2147467259, Microsoft.SharePoint.SPException",
    )
    assert no_profile_reason(500, busy) is None
    assert no_profile_reason(429, body("Tenant does not have a SPO license.")) is None
    assert no_profile_reason(403, body("Insufficient privileges")) is None
    assert no_profile_reason(200, {"id": "x"}) is None


def test_sync_users_setting() -> None:
    def scope(value: str | None) -> UserScope:
        env = {"GRAPH_URL": "https://graph.example/v1.0"}
        if value is not None:
            env["SYNC_USERS"] = value
        return GraphSettings.from_env(EnvReader(env)).users

    assert scope(None) == UserScope.MEMBERS
    assert scope("members-and-guests") == UserScope.MEMBERS_AND_GUESTS
    with pytest.raises(ConfigError, match=r"SYNC_USERS.*members, enabled-members"):
        scope("everybody")
    with pytest.raises(ConfigError, match="not a group object id"):
        scope("group:sales")
    assert scope("group:5D2F8F4E-6F1C-4B7A-9A37-2B8C3E1D0A11").group == (
        "5d2f8f4e-6f1c-4b7a-9a37-2b8c3e1d0a11"
    )
    assert UserScope.ALL.list_headers() == {}
    assert (
        UserScope.ALL.list_url("https://g/v1.0", 999) == "https://g/v1.0/users?$select=id&$top=999"
    )
    url = UserScope.ENABLED_MEMBERS.list_url("https://g/v1.0", 999)
    assert "$count=true" in url and "accountEnabled%20eq%20true" in url
    assert UserScope.ENABLED_MEMBERS.list_headers() == {"ConsistencyLevel": "eventual"}
