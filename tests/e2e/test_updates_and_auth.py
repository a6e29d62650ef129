"""Updates on behalf of the user, and who may call what (through the gateway)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.devstack.lob_client import LobClient, emulator_http, emulator_token
from services.devstack.stack import Stack


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
