"""Updates on behalf of the user, and who may call what (through the gateway)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.devstack.lob_client import LobClient, emulator_http, emulator_token
from devtools.devstack.stack import Stack
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID
from services.profile_extender.write_budget import write_budget_key


def token(stack: Stack, **claims: Any) -> str:
    return emulator_token(stack.emulator_url, stack.ca_file, **claims)


@pytest.fixture(scope="module")
def two_users(lob: LobClient, baseline_cursor: str) -> tuple[dict[str, Any], dict[str, Any]]:
    events, _ = lob.changes()
    return events[20]["after"], events[21]["after"]


def graph_profile(stack: Stack, user_id: str) -> dict[str, Any]:
    with emulator_http(stack.emulator_url, stack.ca_file) as client:
        response = client.get(f"/_emulator/users/{user_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def patch(lob: LobClient, user_id: str, bearer: str, body: Any) -> httpx.Response:
    return lob.http.patch(
        f"/v1/profiles/{user_id}", json=body, headers={"Authorization": f"Bearer {bearer}"}
    )


def test_a_user_updates_their_own_profile_and_graph_has_it(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    me, _ = two_users
    mine = token(stack, user=me["userPrincipalName"])
    response = patch(
        lob, me["id"], mine, {"aboutMe": "Written from the LOB app", "interests": ["Sailing"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["aboutMe"] == "Written from the LOB app"
    in_graph = graph_profile(stack, me["id"])
    assert in_graph["aboutMe"] == "Written from the LOB app"
    assert in_graph["interests"] == ["Sailing"]
    # Fields not sent are left alone.
    assert sorted(in_graph["skills"]) == sorted(me["skills"])


def test_a_user_cannot_update_someone_else(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    me, other = two_users
    mine = token(stack, user=me["userPrincipalName"])
    before = graph_profile(stack, other["id"])
    response = patch(lob, other["id"], mine, {"aboutMe": "not mine to change"})
    assert response.status_code == 403, response.text
    assert graph_profile(stack, other["id"])["aboutMe"] == before["aboutMe"]


def test_updating_a_user_who_does_not_exist_is_404_naming_them(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    me, _ = two_users
    mine = token(stack, user=me["userPrincipalName"])
    for body in ({"aboutMe": "x"}, {"aboutMe": "x", "expectedVersion": "0" * 64}):
        response = patch(lob, "nobody@contoso.onmicrosoft.com", mine, body)
        assert response.status_code == 404, response.text
        assert "'nobody@contoso.onmicrosoft.com' not found" in response.json()["message"]


def test_a_user_updates_their_profile_by_upn(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    me, _ = two_users
    mine = token(stack, user=me["userPrincipalName"])
    response = patch(lob, me["userPrincipalName"], mine, {"aboutMe": "Saved by UPN"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == me["id"]
    assert graph_profile(stack, me["id"])["aboutMe"] == "Saved by UPN"


def test_an_application_token_cannot_update(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    me, _ = two_users
    app = token(stack, roles=["Profiles.Read", "Profiles.Sync"])
    response = patch(lob, me["id"], app, {"aboutMe": "from an app"})
    assert response.status_code == 403
    assert "delegated user token" in response.json()["message"]


def test_stale_expected_version_is_refused_with_the_current_version(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    me, _ = two_users
    mine = token(stack, user=me["userPrincipalName"])
    current = lob.http.get(f"/v1/profiles/{me['id']}").json()["version"]
    stale = "0" * 64
    response = patch(lob, me["id"], mine, {"skills": ["Go"], "expectedVersion": stale})
    assert response.status_code == 409
    assert current in response.json()["message"]
    ok = patch(lob, me["id"], mine, {"skills": ["Go"], "expectedVersion": current})
    assert ok.status_code == 200
    # The answer names the version it was written over: the one read just before.
    assert ok.headers["profile-replaced-version"] == current
    # Without expectedVersion nothing is read first, and nothing is claimed.
    plain = patch(lob, me["id"], mine, {"skills": ["Go", "Rust"]})
    assert plain.status_code == 200 and "profile-replaced-version" not in plain.headers


def test_a_user_token_without_the_apps_scope_is_refused_naming_it(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """An API called on behalf of a user checks the delegated scope in `scp`
    (https://learn.microsoft.com/entra/identity-platform/scenario-protected-web-api-verification-scope-app-roles)."""
    me, _ = two_users
    before = graph_profile(stack, me["id"])
    for scopes in ([], ["Profiles.Read.Something"]):
        unscoped = token(stack, user=me["userPrincipalName"], scopes=scopes)
        response = patch(lob, me["id"], unscoped, {"aboutMe": "without the scope"})
        assert response.status_code == 403, response.text
        assert "Profiles.ReadWrite" in response.json()["message"]
    assert graph_profile(stack, me["id"]) == before
    scoped = token(stack, user=me["userPrincipalName"], scopes=["Profiles.ReadWrite"])
    response = patch(lob, me["id"], scoped, {"aboutMe": "with the scope"})
    assert response.status_code == 200, response.text
    assert graph_profile(stack, me["id"])["aboutMe"] == "with the scope"


def test_writes_past_graphs_write_quota_get_our_429_with_retry_after(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """Graph allows an app 3,000 writes per 150 s in a tenant
    (https://learn.microsoft.com/graph/throttling-limits); the replicas share that
    through Redis. Other replicas are made to have spent it: the next write is
    refused at once, by us, and Graph never sees it."""
    me, _ = two_users
    mine = token(stack, user=me["userPrincipalName"])
    key = write_budget_key(str(stack.emulator["tenantId"]), DEFAULT_CLIENT_ID)
    now_us = int(time.time() * 1e6)
    spent = {f"other-replica-{index}": now_us for index in range(int(3000 * 0.97))}
    with redis.Redis.from_url(stack.redis_url) as client:
        client.zadd(key, spent)
        try:
            before = graph_profile(stack, me["id"])
            response = patch(lob, me["id"], mine, {"aboutMe": "one write too many"})
        finally:
            client.delete(key)
    assert response.status_code == 429, response.text
    assert 140 <= int(response.headers["retry-after"]) <= 150
    assert "write quota" in response.json()["message"]
    assert graph_profile(stack, me["id"]) == before
    # Once the window has room again, writes go through.
    assert patch(lob, me["id"], mine, {"aboutMe": "room again"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"skils": ["Go"]}, 400, "skils: unknown field"),
        ({"displayName": "New name"}, 400, "displayName: is read-only"),
        ({"aboutMe": "x" * 3601}, 400, "aboutMe: must be at most 3600"),
        ({"skills": ["x" * 256]}, 400, "skills[0]: must be at most 255"),
        ({"skills": [f"s{i}" for i in range(101)]}, 400, "skills: at most 100 items"),
        ({"skills": "Go"}, 400, "skills"),
        ({"skills": [1, 2]}, 400, "skills[0]: must be a string"),
        ({}, 400, "no field to change"),
        ({"expectedVersion": "abc", "aboutMe": "x"}, 400, "expectedVersion"),
    ],
)
def test_bad_update_bodies_are_refused_by_name(
    stack: Stack,
    lob: LobClient,
    two_users: tuple[dict[str, Any], dict[str, Any]],
    body: Any,
    status: int,
    fragment: str,
) -> None:
    me, _ = two_users
    mine = token(stack, user=me["userPrincipalName"])
    before = graph_profile(stack, me["id"])
    response = patch(lob, me["id"], mine, body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["message"]
    assert graph_profile(stack, me["id"]) == before


def _forge(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers=header or {"kid": "not-theirs"})


def _unsigned(stack: Stack) -> str:
    real = token(stack, roles=["Profiles.Read"])
    _, payload, _ = real.split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(
        b"="
    )
    return f"{header.decode()}.{payload}."


def test_bad_tokens_are_refused_with_401(
    stack: Stack, lob: LobClient, baseline_cursor: str
) -> None:
    real_claims = jwt.decode(
        token(stack, roles=["Profiles.Read"]), options={"verify_signature": False}
    )
    cases = {
        "none": None,
        "garbage": "not-a-jwt",
        "alg none": _unsigned(stack),
        "another key": _forge(real_claims),
        "expired": token(stack, roles=["Profiles.Read"], expiresIn=-600),
        "wrong audience": token(
            stack, roles=["Profiles.Read"], audience="https://graph.microsoft.com"
        ),
    }
    for name, bearer in cases.items():
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {"Authorization": ""}
        response = lob.http.get("/v1/syncs", headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert "Traceback" not in response.text
        if bearer:
            assert bearer not in response.text


def test_an_app_token_without_the_role_is_refused_with_403(
    stack: Stack, lob: LobClient, baseline_cursor: str
) -> None:
    no_role = token(stack, roles=["Something.Else"])
    response = lob.http.get("/v1/changes", headers={"Authorization": f"Bearer {no_role}"})
    assert response.status_code == 403
    assert "Profiles.Read" in response.json()["message"]
    user = token(stack, user=lob.changes()[0][0]["after"]["userPrincipalName"])
    response = lob.http.get("/v1/syncs", headers={"Authorization": f"Bearer {user}"})
    assert response.status_code == 403 and "application token" in response.json()["message"]


def test_tokens_never_reach_the_logs(stack: Stack, lob: LobClient, baseline_cursor: str) -> None:
    secret = token(stack, roles=["Nope"])
    lob.http.get("/v1/syncs", headers={"Authorization": f"Bearer {secret}"})
    signature = secret.rsplit(".", 1)[-1]
    logs = stack.logs_text()
    assert signature not in logs
    assert lob.http.headers["Authorization"].rsplit(".", 1)[-1] not in logs


def tokens_issued(stack: Stack) -> int:
    with emulator_http(stack.emulator_url, stack.ca_file) as client:
        return int(client.get("/_emulator/stats").json()["tokensIssued"])


def test_a_users_second_save_reuses_the_graph_token_of_the_first(
    stack: Stack, lob: LobClient, two_users: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    me, _ = two_users
    mine = token(stack, user=me["userPrincipalName"])
    before = tokens_issued(stack)
    for text in ("First save", "Second save", "Third save"):
        response = patch(lob, me["id"], mine, {"aboutMe": text})
        assert response.status_code == 200, response.text
    assert graph_profile(stack, me["id"])["aboutMe"] == "Third save"
    # One on-behalf-of exchange with the authority for the three saves.
    assert tokens_issued(stack) - before == 1
    # A new sign-in (another token of the same user) is exchanged on its own.
    again = token(stack, user=me["userPrincipalName"])
    after_sign_in = tokens_issued(stack)
    assert patch(lob, me["id"], again, {"aboutMe": "After signing in again"}).status_code == 200
    assert tokens_issued(stack) - after_sign_in == 1
