from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from emulator_helpers import assert_graph_error, bearer, first_user, mint

from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, GRAPH_RESOURCE
from devtools.graph_emulator.state import EmulatorState


async def test_edit_then_graph_shows_it(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    user = first_user(state)
    edit = {"aboutMe": "Edited in Delve ✨", "skills": ["Kubernetes"], "department": "Legal"}
    response = await client.post(f"/_emulator/users/{user['id']}/edit", json=edit)
    assert response.status_code == 200
    assert response.json()["aboutMe"] == edit["aboutMe"]
    got = (
        await client.get(
            f"/v1.0/users/{user['id']}?$select=aboutMe,skills,department", headers=app_headers
        )
    ).json()
    assert {k: got[k] for k in edit} == edit


@pytest.mark.parametrize(
    "body",
    [
        {"skills": "no"},
        {"skills": [1]},
        {"shoeSize": 1},
        {"id": "x"},
        {"displayName": None},
        {"accountEnabled": "yes"},
        [],
        "text",
        {"userPrincipalName": "x@elsewhere.com"},
    ],
)
async def test_edit_validates(
    client: httpx.AsyncClient, state: EmulatorState, body: object
) -> None:
    response = await client.post(f"/_emulator/users/{first_user(state)['id']}/edit", json=body)
    assert_graph_error(response, 400)


async def test_edit_unknown_user_and_bad_json(client: httpx.AsyncClient) -> None:
    assert_graph_error(await client.post("/_emulator/users/nobody/edit", json={}), 404)
    response = await client.post("/_emulator/users/nobody/edit", content=b"{")
    assert_graph_error(response, 404)


async def test_create_get_delete(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/_emulator/users",
        json={
            "userPrincipalName": "zoe.new@contoso.onmicrosoft.com",
            "displayName": "Zoë New",
            "skills": ["Pottery"],
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["mail"] == "zoe.new@contoso.onmicrosoft.com" and created["id"]
    got = await client.get(
        "/v1.0/users/zoe.new@contoso.onmicrosoft.com?$select=id,skills", headers=app_headers
    )
    assert got.json()["skills"] == ["Pottery"] and got.json()["id"] == created["id"]

    again = await client.post(
        "/_emulator/users", json={"userPrincipalName": "ZOE.NEW@contoso.onmicrosoft.com"}
    )
    assert_graph_error(again, 409)
    chosen = "0f0f0f0f-1111-4222-8333-444444444444"
    assert (await client.post("/_emulator/users", json={"id": chosen})).json()["id"] == chosen
    assert_graph_error(await client.post("/_emulator/users", json={"id": chosen}), 409)
    assert_graph_error(await client.post("/_emulator/users", json={"id": "nope"}), 400)
    assert len(state.store) == 252

    assert (await client.delete(f"/_emulator/users/{created['id']}")).status_code == 204
    assert_graph_error(await client.get(f"/v1.0/users/{created['id']}", headers=app_headers), 404)
    assert_graph_error(await client.delete(f"/_emulator/users/{created['id']}"), 404)


async def test_config_round_trip_and_validation(client: httpx.AsyncClient) -> None:
    config = (await client.get("/_emulator/config")).json()
    assert config == {
        "quotaPer10s": 5000,
        "writeQuotaPer150s": 3000,
        "latencyMs": 0,
        "batchLatencyMs": 0,
        "profileLatencyMedianMs": 0,
        "profileLatencyP99Ms": 0,
        "failureRate": 0.0,
        "failureStatuses": [429, 500, 502, 503, 504],
        "dropRate": 0.0,
        "seed": 7,
    }
    response = await client.put("/_emulator/config", json={"latencyMs": 5, "failureRate": 0})
    assert response.json() == {**config, "latencyMs": 5, "failureRate": 0.0}
    for body, field in [
        ({"latencyMs": "5"}, "latencyMs"),
        ({"latencyMs": -1}, "latencyMs"),
        ({"batchLatencyMs": 60_001}, "batchLatencyMs"),
        ({"profileLatencyMedianMs": -5}, "profileLatencyMedianMs"),
        ({"profileLatencyP99Ms": 60_001}, "profileLatencyP99Ms"),
        # A p99 below the median (the stored p99 is 0) is no distribution.
        ({"profileLatencyMedianMs": 300}, "profileLatencyP99Ms"),
        ({"profileLatencyMedianMs": 300, "profileLatencyP99Ms": 299}, "profileLatencyP99Ms"),
        ({"failureRate": 1.5}, "failureRate"),
        ({"dropRate": -0.1}, "dropRate"),
        ({"failureStatuses": []}, "failureStatuses"),
        ({"failureStatuses": [404]}, "failureStatuses"),
        ({"failureStatuses": "503"}, "failureStatuses"),
        ({"seed": 1.2}, "seed"),
        ({"quotaPer10s": True}, "quotaPer10s"),
        ({"colour": 1}, "colour"),
    ]:
        bad = await client.put("/_emulator/config", json=body)
        assert_graph_error(bad, 400)
        assert field in bad.json()["error"]["message"]
    assert_graph_error(await client.put("/_emulator/config", content=b"[}"), 400)
    assert (await client.get("/_emulator/config")).json()["latencyMs"] == 5


async def test_latency_is_applied(client: httpx.AsyncClient, app_headers: dict[str, str]) -> None:
    await client.put("/_emulator/config", json={"latencyMs": 150})
    started = time.perf_counter()
    response = await client.get("/v1.0/users?$top=1", headers=app_headers)
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.14


async def test_batch_latency_slows_batches_only(
    client: httpx.AsyncClient, app_headers: dict[str, str]
) -> None:
    await client.put("/_emulator/config", json={"batchLatencyMs": 2000})
    started = time.perf_counter()
    users = await client.get("/v1.0/users?$top=2&$select=id", headers=app_headers)
    listed = time.perf_counter() - started
    assert users.status_code == 200
    batch = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/users/{users.json()['value'][0]['id']}"}
        ]
    }
    started = time.perf_counter()
    response = await client.post("/v1.0/$batch", json=batch, headers=app_headers)
    assert response.status_code == 200 and response.json()["responses"][0]["status"] == 200
    # The batch waited its 2 s; the list, far less (a margin no busy machine uses up).
    assert time.perf_counter() - started >= 1.95 > 1.0 > listed


async def test_default_quota_by_tenant_size(signing_key: object) -> None:
    from devtools.graph_emulator.signing_key import SigningKey

    assert isinstance(signing_key, SigningKey)
    sizes = {10: 3500, 50: 5000, 500: 5000, 501: 8000}
    for users, quota in sizes.items():
        state = EmulatorState.build(users=users, seed=1, signing_key=signing_key)
        assert state.config.quota_per_10s == quota


async def test_stats(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    await client.get("/v1.0/users", headers=app_headers)
    await client.get(f"/v1.0/users/{first_user(state)['id']}", headers=app_headers)
    stats = (await client.get("/_emulator/stats")).json()
    # Listing users costs 2 resource units without $select, one user 1.
    assert stats["requests"] == 2 and stats["resourceUnits"] == 3 and stats["throttled"] == 0
    assert stats["peakResourceUnitsPer10s"] == 3
    assert stats["byRoute"] == {"GET /users": 1, "GET /users/{id}": 1}
    assert (await client.delete("/_emulator/stats")).status_code == 204
    assert (await client.get("/_emulator/stats")).json()["requests"] == 0


async def test_token_route(client: httpx.AsyncClient, state: EmulatorState) -> None:
    user = first_user(state)
    claims = jwt.decode(
        await mint(client, user=user["userPrincipalName"]), options={"verify_signature": False}
    )
    assert claims["aud"] == f"api://{DEFAULT_CLIENT_ID}" and claims["scp"] == "Profiles.ReadWrite"
    assert claims["oid"] == user["id"] and claims["upn"] == user["userPrincipalName"]
    app_claims = jwt.decode(
        await mint(client, roles=["Profiles.Read"]), options={"verify_signature": False}
    )
    assert app_claims["roles"] == ["Profiles.Read"] and "scp" not in app_claims
    graph = await mint(client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE)
    me = await client.get("/v1.0/me", headers=bearer(graph))
    assert me.json()["id"] == user["id"]

    unknown = await client.post("/_emulator/token", json={"user": "ghost@contoso.com"})
    assert_graph_error(unknown, 404)
    for body in [
        {},
        {"user": "a", "roles": []},
        {"roles": "x"},
        {"roles": [], "audience": "https://evil"},
        {"roles": [], "expiresIn": "1"},
        {"roles": [], "scopes": ["x"]},
        {"user": 5},
        {"roles": [], "x": 1},
    ]:
        assert_graph_error(await client.post("/_emulator/token", json=body), 400)


async def test_user_token_carries_the_apps_delegated_scope_unless_told_otherwise(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    """A user token for the profile-sync API carries the scope the app exposes,
    Profiles.ReadWrite, in ``scp`` ("the set of scopes exposed by the application for which
    the client application has requested (and received) consent",
    https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference);
    ``"scopes": []`` mints one without it, to check that an API refuses such a token, and
    another list is taken as given."""
    upn = first_user(state)["userPrincipalName"]

    async def scp(**body: Any) -> str:
        token = await mint(client, user=upn, **body)
        return str(jwt.decode(token, options={"verify_signature": False})["scp"])

    assert await scp() == "Profiles.ReadWrite"
    assert await scp(audience=DEFAULT_CLIENT_ID) == "Profiles.ReadWrite"
    assert await scp(scopes=[]) == ""
    assert await scp(scopes=["Profiles.Read", "Other.Scope"]) == "Profiles.Read Other.Scope"
