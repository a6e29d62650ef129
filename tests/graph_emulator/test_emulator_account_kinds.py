"""A tenant as real directories are: guests, shared mailboxes, rooms, equipment,
unlicensed members, members without a personal site, disabled members.

Microsoft documents no per-user error for reading SharePoint-backed properties of an
account SharePoint keeps no profile for; the answers emulated are those reported in
Microsoft's trackers:
- "Tenant does not have a SPO license." (400 BadRequest), reading or writing aboutMe,
  skills, ... https://github.com/microsoftgraph/microsoft-graph-docs/issues/4233
- "Unable to retrieve user's mysite URL." (UnknownError)
  https://github.com/microsoftgraph/microsoft-graph-docs/issues/11344
The user list is filtered with the advanced query Graph documents for service plans
(https://learn.microsoft.com/graph/aad-advanced-queries, "List users with a particular
service plan"), which needs ConsistencyLevel: eventual and $count=true.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from emulator_helpers import BASE_URL, assert_graph_error, bearer, mint

from devtools.graph_emulator.__main__ import parse_args
from devtools.graph_emulator.accounts import TenantMix, has_sharepoint_licence
from devtools.graph_emulator.app import create_app
from devtools.graph_emulator.defaults import GRAPH_RESOURCE
from devtools.graph_emulator.signing_key import SigningKey
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.tenant import generate_users

PROFILE_SELECT = "id,aboutMe,skills,pastProjects,schools,interests"
LICENSED = "assignedPlans/any(p:p/service eq 'SharePoint' and p/capabilityStatus eq 'Enabled')"
USERS = 400


@pytest.fixture
def mixed(signing_key: SigningKey) -> EmulatorState:
    return EmulatorState.build(
        users=USERS, seed=11, signing_key=signing_key, mix=TenantMix.realistic()
    )


@pytest.fixture
async def http(mixed: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(mixed))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
async def headers(http: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await mint(http, roles=["User.Read.All"], audience=GRAPH_RESOURCE))


def kind(user: dict[str, Any]) -> str:
    if user["userType"] == "Guest":
        return "guest"
    if user["userPrincipalName"].startswith(("shared", "room", "equipment")):
        return "resource"
    return "member"


def test_realistic_mix_holds_a_few_percent_of_each_kind_and_keeps_the_seed() -> None:
    plain = generate_users(USERS, 11)
    mixed = generate_users(USERS, 11, mix=TenantMix.realistic())
    assert [u["id"] for u in plain] == [u["id"] for u in mixed]
    kinds = Counter(kind(u) for u in mixed)
    mix = TenantMix.realistic()
    assert kinds["guest"] == round(mix.guests * USERS)
    assert kinds["resource"] == round((mix.shared_mailboxes + mix.rooms + mix.equipment) * USERS)
    for user in mixed:
        if kind(user) == "guest":
            assert "#EXT#@" in user["userPrincipalName"] and user["assignedPlans"] == []
        if kind(user) == "resource":
            assert user["accountEnabled"] is False and user["assignedPlans"] == []
    unlicensed = [u for u in mixed if kind(u) == "member" and not has_sharepoint_licence(u)]
    no_site = [u for u in mixed if has_sharepoint_licence(u) and u["mySite"] is None]
    assert len(unlicensed) == round(mix.unlicensed * USERS)
    assert len(no_site) == round(mix.no_personal_site * USERS)


async def test_each_kind_answers_profile_reads_as_graph_does(
    mixed: EmulatorState, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answers: Counter[tuple[str, int, str]] = Counter()
    for user in mixed.store.iter_after(None):
        response = await http.get(
            f"/v1.0/users/{quote(user['id'])}?$select={PROFILE_SELECT}", headers=headers
        )
        if response.status_code == 200:
            answers[(kind(user), 200, "")] += 1
            continue
        assert_graph_error(response, 400)
        answers[(kind(user), 400, response.json()["error"]["message"])] += 1
        # The directory part of the same user reads fine: only SharePoint refuses.
        basic = await http.get(f"/v1.0/users/{quote(user['id'])}", headers=headers)
        assert basic.status_code == 200
    no_licence = "Tenant does not have a SPO license."
    no_site = "Unable to retrieve user's mysite URL."
    assert answers[("guest", 200, "")] == 0
    assert answers[("resource", 200, "")] == 0
    assert answers[("guest", 400, no_licence)] > 0
    assert answers[("resource", 400, no_licence)] > 0
    assert answers[("member", 400, no_licence)] > 0
    assert answers[("member", 400, no_site)] > 0
    assert answers[("member", 200, "")] > 0.85 * USERS


async def test_licensed_filter_is_an_advanced_query(
    mixed: EmulatorState, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """Without ConsistencyLevel: eventual and $count=true Graph refuses a lambda over
    assignedPlans (https://learn.microsoft.com/graph/aad-advanced-queries)."""
    flt = quote(f"userType eq 'Member' and {LICENSED}")
    plain = await http.get(f"/v1.0/users?$select=id&$filter={flt}", headers=headers)
    assert_graph_error(plain, 400, "Request_UnsupportedQuery")
    assert "ConsistencyLevel" in plain.json()["error"]["message"]
    no_count = await http.get(
        f"/v1.0/users?$select=id&$filter={flt}",
        headers={**headers, "ConsistencyLevel": "eventual"},
    )
    assert_graph_error(no_count, 400, "Request_UnsupportedQuery")

    listed: list[str] = []
    url: str | None = f"/v1.0/users?$select=id&$top=50&$count=true&$filter={flt}"
    count = None
    while url:
        page = await http.get(url, headers={**headers, "ConsistencyLevel": "eventual"})
        assert page.status_code == 200, page.text
        body = page.json()
        count = body.get("@odata.count", count)
        listed += [user["id"] for user in body["value"]]
        url = body.get("@odata.nextLink")
    expected = {
        u["id"]
        for u in mixed.store.iter_after(None)
        if u["userType"] == "Member" and has_sharepoint_licence(u)
    }
    assert set(listed) == expected and count == len(expected)
    # Nobody listed is a guest, a room or unlicensed; only members without a site refuse.
    assert len(expected) < USERS


async def test_service_plan_id_filter_and_bad_lambdas(
    mixed: EmulatorState, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    advanced = {**headers, "ConsistencyLevel": "eventual"}
    by_id = quote("assignedPlans/any(a:a/servicePlanId eq 5dbe027f-2339-4123-9542-606e4d348a72)")
    response = await http.get(
        f"/v1.0/users?$select=id&$top=999&$count=true&$filter={by_id}", headers=advanced
    )
    assert response.status_code == 200
    licensed = sum(1 for u in mixed.store.iter_after(None) if has_sharepoint_licence(u))
    assert response.json()["@odata.count"] == licensed
    for bad in (
        "businessPhones/any(p:p eq '1')",
        "assignedPlans/any(a:a/assignedDateTime eq 'x')",
        "assignedPlans/any(a:b/service eq 'SharePoint')",
    ):
        refused = await http.get(
            f"/v1.0/users?$select=id&$count=true&$filter={quote(bad)}", headers=advanced
        )
        assert_graph_error(refused, 400)


async def test_admin_takes_and_gives_a_licence(
    mixed: EmulatorState, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    member = next(
        u for u in mixed.store.iter_after(None) if has_sharepoint_licence(u) and u["mySite"]
    )
    url = f"/v1.0/users/{member['id']}?$select={PROFILE_SELECT}"
    assert (await http.get(url, headers=headers)).status_code == 200
    taken = await http.post(f"/_emulator/users/{member['id']}/sharepoint", json={"licensed": False})
    assert taken.status_code == 200 and taken.json()["hasProfile"] is False
    refused = await http.get(url, headers=headers)
    assert_graph_error(refused, 400, "BadRequest")
    assert refused.json()["error"]["message"] == "Tenant does not have a SPO license."
    given = await http.post(f"/_emulator/users/{member['id']}/sharepoint", json={"licensed": True})
    assert given.json()["hasProfile"] is True
    assert (await http.get(url, headers=headers)).status_code == 200
    for body in ({}, {"licensed": "no"}, {"licenced": True}):
        bad = await http.post(f"/_emulator/users/{member['id']}/sharepoint", json=body)
        assert_graph_error(bad, 400)


def test_tenant_mix_on_the_command_line() -> None:
    assert parse_args([]).tenant_mix == TenantMix.realistic()
    assert parse_args(["--tenant-mix", "none"]).tenant_mix.total == 0
    assert parse_args(["--tenant-mix", "guests=0.5,rooms=0.1"]).tenant_mix == TenantMix(
        guests=0.5, rooms=0.1
    )
    for bad in ("guests=2", "ghosts=0.1", "guests=lots", "guests=0.7,rooms=0.7"):
        with pytest.raises(SystemExit) as exited:
            parse_args(["--tenant-mix", bad])
        assert exited.value.code == 2


async def test_a_user_without_a_profile_cannot_write_one(
    mixed: EmulatorState, http: httpx.AsyncClient
) -> None:
    """A PATCH of aboutMe for an unlicensed user answers as reported in
    https://github.com/microsoftgraph/microsoft-graph-docs/issues/4233; directory
    properties stay writable."""
    guest = next(u for u in mixed.store.iter_after(None) if u["userType"] == "Guest")
    token = await mint(http, user=guest["userPrincipalName"], audience=GRAPH_RESOURCE)
    refused = await http.patch("/v1.0/me", json={"aboutMe": "Hello"}, headers=bearer(token))
    assert_graph_error(refused, 400, "BadRequest")
    assert refused.json()["error"]["message"] == "Tenant does not have a SPO license."
    assert mixed.store.resolve(guest["id"])["aboutMe"] != "Hello"


async def test_group_members_cast_to_users(
    mixed: EmulatorState, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """ "List group transitive members" with the OData cast to users; application
    permission GroupMember.Read.All
    (https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers)."""
    users = [u["id"] for u in mixed.store.iter_after(None)]
    inner = await http.post(
        "/_emulator/groups", json={"displayName": "Inner", "members": users[:3]}
    )
    assert inner.status_code == 201
    outer = await http.post(
        "/_emulator/groups",
        json={"displayName": "Outer", "members": [*users[3:8], inner.json()["id"]]},
    )
    group = outer.json()["id"]
    reader = bearer(await mint(http, roles=["GroupMember.Read.All"], audience=GRAPH_RESOURCE))
    listed: list[str] = []
    url: str | None = (
        f"/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user?$select=id&$top=3"
    )
    while url:
        page = await http.get(url, headers=reader)
        assert page.status_code == 200, page.text
        listed += [u["id"] for u in page.json()["value"]]
        url = page.json().get("@odata.nextLink")
    assert sorted(listed) == sorted(users[:8])
    direct = await http.get(
        f"/v1.0/groups/{group}/members/microsoft.graph.user?$select=id", headers=reader
    )
    assert sorted(u["id"] for u in direct.json()["value"]) == sorted(users[3:8])

    # User.Read.All alone does not read memberships; an unknown group is a 404.
    refused = await http.get(
        f"/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user", headers=headers
    )
    assert_graph_error(refused, 403, "Authorization_RequestDenied")
    unknown = await http.get(
        "/v1.0/groups/00000000-0000-4000-8000-000000000000/members/microsoft.graph.user",
        headers=reader,
    )
    assert_graph_error(unknown, 404, "Request_ResourceNotFound")
    bad = await http.post("/_emulator/groups", json={"displayName": "X", "members": ["nobody"]})
    assert_graph_error(bad, 400)
