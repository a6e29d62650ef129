"""What the user permissions let a caller read and write, as Microsoft's pages define them:
User.ReadBasic.All (the basic profile, "Working with users in Microsoft Graph",
https://learn.microsoft.com/en-us/graph/api/resources/users?view=graph-rest-1.0#user-basic-profile-properties)
and User.ReadUpdate.All (the least privileged permission of "Update user",
https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0#permissions).
"""

from __future__ import annotations

from typing import Any

import httpx
from emulator_helpers import assert_graph_error, bearer, mint

from devtools.graph_emulator.defaults import GRAPH_RESOURCE
from devtools.graph_emulator.permissions import USER_ADMINISTRATOR
from devtools.graph_emulator.state import EmulatorState

BASIC = {"displayName", "givenName", "id", "mail", "surname", "userPrincipalName"}


def filled_user(state: EmulatorState, skip: int = 0) -> dict[str, Any]:
    """A user whose job title, department and skills are all filled in."""
    users = state.store.page_after(None, 100)[0]
    found = [u for u in users if u.get("jobTitle") and u.get("department") and u.get("skills")]
    return found[skip]


async def delegated(
    client: httpx.AsyncClient, user: dict[str, Any], *scopes: str
) -> dict[str, str]:
    token = await mint(
        client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE, scopes=list(scopes)
    )
    return bearer(token)


async def test_read_basic_all_reads_the_basic_profile_of_others(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    """User.ReadBasic.All reads only "displayName, givenName, id, mail, photo,
    securityIdentifier, surname, userPrincipalName" of other users; every other property
    comes back empty (null or []), as users of the permission report
    (https://github.com/microsoftgraph/microsoft-graph-explorer-v4/issues/608). It "also
    allows the app to read the full profile of the signed-in user"
    (https://learn.microsoft.com/en-us/graph/permissions-reference#userreadbasicall)."""
    reader, other = filled_user(state, 0), filled_user(state, 1)
    headers = await delegated(client, reader, "User.ReadBasic.All")
    select = "id,displayName,givenName,surname,mail,userPrincipalName,jobTitle,department,skills"
    got = (await client.get(f"/v1.0/users/{other['id']}?$select={select}", headers=headers)).json()
    for name in BASIC:
        assert got[name] == other[name]
    assert (got["jobTitle"], got["department"], got["skills"]) == (None, None, [])
    # The default property set too: the basic ones filled, the rest empty.
    default = (await client.get(f"/v1.0/users/{other['id']}", headers=headers)).json()
    assert default["displayName"] == other["displayName"]
    assert (default["jobTitle"], default["businessPhones"]) == (None, [])
    # A list: basic for everyone but the signed-in user.
    page = (await client.get("/v1.0/users?$top=100&$select=id,jobTitle", headers=headers)).json()
    titles = {u["id"]: u["jobTitle"] for u in page["value"]}
    assert titles[other["id"]] is None and titles[reader["id"]] == reader["jobTitle"]
    # The signed-in user's own profile in full.
    me = (await client.get("/v1.0/me?$select=jobTitle,skills", headers=headers)).json()
    assert (me["jobTitle"], me["skills"]) == (reader["jobTitle"], reader["skills"])
    # The application permission of the same name reads the basic profile as well.
    app = bearer(await mint(client, roles=["User.ReadBasic.All"], audience=GRAPH_RESOURCE))
    got = (await client.get(f"/v1.0/users/{other['id']}?$select=id,jobTitle", headers=app)).json()
    assert got == {**got, "id": other["id"], "jobTitle": None}
    # And it writes nothing.
    refused = await client.patch(f"/v1.0/users/{other['id']}", json={"city": "Oslo"}, headers=app)
    assert_graph_error(refused, 403, "Authorization_RequestDenied")


async def test_read_update_all_reads_and_updates_users(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    """User.ReadUpdate.All is Update user's least privileged permission, delegated and
    application: an app reads full profiles and changes directory properties (never the
    SharePoint-backed ones, which need a signed-in user); a signed-in administrator changes
    another user's profile; without an administrator role, only their own."""
    target, admin = filled_user(state, 0), filled_user(state, 1)
    app = bearer(await mint(client, roles=["User.ReadUpdate.All"], audience=GRAPH_RESOURCE))
    got = (await client.get(f"/v1.0/users/{target['id']}?$select=id,skills", headers=app)).json()
    assert got["skills"] == target["skills"]
    url = f"/v1.0/users/{target['id']}"
    assert (await client.patch(url, json={"city": "Tromsø"}, headers=app)).status_code == 204
    assert_graph_error(await client.patch(url, json={"skills": ["Go"]}, headers=app), 403)

    token = await mint(
        client,
        user=admin["userPrincipalName"],
        audience=GRAPH_RESOURCE,
        scopes=["User.ReadUpdate.All"],
        wids=[USER_ADMINISTRATOR],
    )
    response = await client.patch(url, json={"skills": ["Go"]}, headers=bearer(token))
    assert response.status_code == 204
    assert state.store.resolve(target["id"])["skills"] == ["Go"]  # type: ignore[index]

    plain = await delegated(client, filled_user(state, 2), "User.ReadUpdate.All")
    assert_graph_error(await client.patch(url, json={"skills": ["Rust"]}, headers=plain), 403)
    own = await client.patch("/v1.0/me", json={"skills": ["Rust"]}, headers=plain)
    assert own.status_code == 204
