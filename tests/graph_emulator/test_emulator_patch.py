from __future__ import annotations

from typing import Any

import httpx
import pytest
from emulator_helpers import assert_graph_error, bearer, first_user, mint, nth_user

from services.graph_emulator.defaults import GRAPH_RESOURCE
from services.graph_emulator.state import EmulatorState


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
        ({}, "Empty Payload"),
        ([], "JSON object"),
    ],
)
async def test_patch_validation(
    client: httpx.AsyncClient, state: EmulatorState, body: object, fragment: str
) -> None:
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
