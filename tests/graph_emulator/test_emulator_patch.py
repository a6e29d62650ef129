"""PATCH of users, as documented in "Update user"
(https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0) and the user
resource type's properties and limits
(https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0#properties).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from emulator_helpers import assert_graph_error, bearer, first_user, mint, nth_user

from devtools.graph_emulator.defaults import GRAPH_RESOURCE
from devtools.graph_emulator.state import EmulatorState


async def user_headers(client: httpx.AsyncClient, user: dict[str, Any]) -> dict[str, str]:
    return bearer(await mint(client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE))


async def test_user_updates_own_profile(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    user = first_user(state)
    headers = await user_headers(client, user)
    change = {
        "aboutMe": "Nouveau départ.",
        "skills": ["Rust", "Résumé writing"],
        "pastProjects": [],
        "schools": ["ETH Zürich"],
        "interests": ["Pétanque"],
        "responsibilities": ["On-call rotation"],
    }
    response = await client.patch(f"/v1.0/users/{user['id']}", json=change, headers=headers)
    assert response.status_code == 204 and response.content == b""
    got = (
        await client.get(
            f"/v1.0/users/{user['id']}?$select={','.join(change)}", headers=app_headers
        )
    ).json()
    for name, value in change.items():
        assert got[name] == value
    # /me works for writes too, and null clears.
    response = await client.patch("/v1.0/me", json={"aboutMe": None}, headers=headers)
    assert response.status_code == 204
    assert state.store.resolve(user["id"])["aboutMe"] is None  # type: ignore[index]


async def test_app_token_cannot_write_profile(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    user = first_user(state)
    token = await mint(client, roles=["User.ReadWrite.All"], audience=GRAPH_RESOURCE)
    response = await client.patch(
        f"/v1.0/users/{user['id']}", json={"skills": ["x"]}, headers=bearer(token)
    )
    assert_graph_error(response, 403, "Authorization_RequestDenied")
    assert response.json()["error"]["message"] == (
        "Insufficient privileges to complete the operation."
    )
    # Directory properties are fine with that role.
    response = await client.patch(
        f"/v1.0/users/{user['id']}", json={"jobTitle": "CTO"}, headers=bearer(token)
    )
    assert response.status_code == 204


async def test_user_cannot_write_another_profile(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    me, other = first_user(state), nth_user(state, 1)
    headers = await user_headers(client, me)
    response = await client.patch(
        f"/v1.0/users/{other['id']}", json={"skills": ["x"]}, headers=headers
    )
    assert_graph_error(response, 403, "Authorization_RequestDenied")
    assert other["skills"] != ["x"]


async def test_profile_and_directory_properties_cannot_mix(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    user = first_user(state)
    headers = await user_headers(client, user)
    response = await client.patch(
        f"/v1.0/users/{user['id']}", json={"skills": ["Go"], "jobTitle": "Boss"}, headers=headers
    )
    assert_graph_error(response, 400, "Request_BadRequest")
    assert "own PATCH request" in response.json()["error"]["message"]
    assert user["jobTitle"] != "Boss"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"shoeSize": 42}, "Property 'shoeSize' does not exist"),
        ({"id": "abc"}, "read-only"),
        ({"skills": "Go"}, "Invalid value specified for property 'skills'"),
        ({"skills": ["Go", 3]}, "Invalid value specified for property 'skills'"),
        ({"aboutMe": 12}, "Invalid value specified for property 'aboutMe'"),
        ({"birthday": "yesterday"}, "Invalid value specified for property 'birthday'"),
        ({"jobTitle": "x" * 129}, "maximum of 128 characters"),
        ({"department": "x" * 65}, "maximum of 64 characters"),
        ({"displayName": "x" * 257}, "maximum of 256 characters"),
        ({"usageLocation": "USA"}, "maximum of 2 characters"),
        ({"displayName": " "}, "Invalid value specified for property 'displayName'"),
        ({"businessPhones": ["1", "2"]}, "Invalid value specified for property 'businessPhones'"),
        ({"mail": "rené@contoso.onmicrosoft.com"}, "Invalid value specified for property 'mail'"),
        ({"userPrincipalName": "a b@contoso.onmicrosoft.com"}, "userPrincipalName"),
        ({"userPrincipalName": "ab@fabrikam.com"}, "verified domain"),
        ({"createdDateTime": "2020-01-01T00:00:00Z"}, "read-only"),
        ({}, "Empty Payload"),
        ([], "JSON object"),
    ],
)
async def test_patch_validation(
    client: httpx.AsyncClient, state: EmulatorState, body: object, fragment: str
) -> None:
    """Unknown or read-only properties, wrong types and over-long values are a 400 that
    names the property."""
    user = first_user(state)
    response = await client.patch(
        f"/v1.0/users/{user['id']}", json=body, headers=await user_headers(client, user)
    )
    assert_graph_error(response, 400)
    assert fragment in response.json()["error"]["message"]


async def test_patch_bad_json_and_empty_body(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    user = first_user(state)
    headers = {**await user_headers(client, user), "Content-Type": "application/json"}
    for content in (b"{not json", b"", b"\xff\xfe"):
        response = await client.patch(f"/v1.0/users/{user['id']}", content=content, headers=headers)
        assert_graph_error(response, 400)


async def test_patch_unknown_user(client: httpx.AsyncClient, state: EmulatorState) -> None:
    headers = await user_headers(client, first_user(state))
    response = await client.patch(
        "/v1.0/users/00000000-0000-0000-0000-000000000000", json={"jobTitle": "x"}, headers=headers
    )
    assert_graph_error(response, 404, "Request_ResourceNotFound")


async def test_admin_may_change_another_users_profile(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    """A delegated user changes another user's profile only with an administrator role
    (wids) and a scope that reaches other users."""
    admin, other = first_user(state), nth_user(state, 1)
    user_administrator = "fe930be7-5e62-47db-91af-98c3a49a38b1"
    without_role = bearer(
        await mint(
            client,
            user=admin["userPrincipalName"],
            audience=GRAPH_RESOURCE,
            scopes=["User.ReadWrite.All"],
        )
    )
    url = f"/v1.0/users/{other['id']}"
    assert_graph_error(
        await client.patch(url, json={"skills": ["Admin"]}, headers=without_role), 403
    )
    assert_graph_error(await client.patch(url, json={"city": "Oslo"}, headers=without_role), 403)
    with_role = bearer(
        await mint(
            client,
            user=admin["userPrincipalName"],
            audience=GRAPH_RESOURCE,
            scopes=["User.ReadWrite.All"],
            wids=[user_administrator],
        )
    )
    response = await client.patch(url, json={"skills": ["Admin"]}, headers=with_role)
    assert response.status_code == 204
    assert other["skills"] == ["Admin"]
    # The role without a scope reaching other users is not enough.
    role_only = bearer(
        await mint(
            client,
            user=admin["userPrincipalName"],
            audience=GRAPH_RESOURCE,
            scopes=["User.ReadWrite"],
            wids=[user_administrator],
        )
    )
    assert_graph_error(await client.patch(url, json={"skills": ["x"]}, headers=role_only), 403)


async def test_deleted_user_is_not_found(client: httpx.AsyncClient, state: EmulatorState) -> None:
    user = nth_user(state, 6)
    headers = await user_headers(client, user)
    assert (await client.delete(f"/_emulator/users/{user['id']}")).status_code == 204
    response = await client.patch(
        f"/v1.0/users/{user['id']}", json={"jobTitle": "Ghost"}, headers=headers
    )
    assert_graph_error(response, 404, "Request_ResourceNotFound")


async def test_preferred_name_is_not_supported(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """preferredName: "Not Supported. This attribute returns an empty string." Reads answer ""
    for every user, and Update user does not list it among the properties it changes, so a
    PATCH of it is refused with a 400 that names it, alone or beside the profile fields.
    https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0#properties
    https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0#request-body
    """
    for index in range(30):
        user_id = nth_user(state, index)["id"]
        got = await client.get(
            f"/v1.0/users/{user_id}?$select=id,preferredName,skills", headers=app_headers
        )
        assert got.status_code == 200 and got.json()["preferredName"] == ""
    user = first_user(state)
    headers = await user_headers(client, user)
    for change in ({"preferredName": "Kim"}, {"preferredName": "Kim", "skills": ["Go"]}):
        for url in ("/v1.0/me", f"/v1.0/users/{user['id']}"):
            refused = await client.patch(url, json=change, headers=headers)
            assert_graph_error(refused, 400)
            assert "'preferredName' is not supported" in refused.json()["error"]["message"]
    assert state.store.resolve(user["id"])["skills"] != ["Go"]  # type: ignore[index]
    # Edits "made in Delve" cannot set it either.
    edit = await client.post(f"/_emulator/users/{user['id']}/edit", json={"preferredName": "K"})
    assert_graph_error(edit, 400)
