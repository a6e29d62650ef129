"""The Microsoft identity platform's token endpoint and discovery documents.

- Client credentials: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
- On-behalf-of: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-on-behalf-of-flow
- Resource owner password credentials: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc
- Access token claims: https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
- AADSTS error codes: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest
from emulator_helpers import BASE_URL, first_user, mint

from devtools.graph_emulator.defaults import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT_DOMAIN,
    DEFAULT_TENANT_ID,
    DEFAULT_USER_PASSWORD,
    GRAPH_RESOURCE,
)
from devtools.graph_emulator.state import EmulatorState

TOKEN_PATH = f"/{DEFAULT_TENANT_ID}/oauth2/v2.0/token"
GRAPH_SCOPE = f"{GRAPH_RESOURCE}/.default"


def cc_form(**overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "scope": GRAPH_SCOPE,
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v != ""}


def assert_entra_error(response: httpx.Response, status: int, error: str, code: int) -> None:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}:")
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert body[key]


async def test_discovery_document(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/{DEFAULT_TENANT_ID}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == f"{BASE_URL}/{DEFAULT_TENANT_ID}/v2.0"
    assert doc["token_endpoint"] == f"{BASE_URL}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{BASE_URL}/{DEFAULT_TENANT_ID}/discovery/v2.0/keys"
    assert doc["authorization_endpoint"].startswith(BASE_URL)
    assert "client_secret_post" in doc["token_endpoint_auth_methods_supported"]


async def test_discovery_unknown_tenant(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/00000000-0000-0000-0000-000000000001/v2.0/.well-known/openid-configuration",
        headers={"client-request-id": "corr-1"},
    )
    assert_entra_error(response, 400, "invalid_tenant", 90002)
    assert response.json()["correlation_id"] == "corr-1"


async def test_jwks_verifies_issued_tokens(client: httpx.AsyncClient) -> None:
    keys = (await client.get(f"/{DEFAULT_TENANT_ID}/discovery/v2.0/keys")).json()["keys"]
    response = await client.post(TOKEN_PATH, data=cc_form())
    token = response.json()["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys if k["kid"] == kid)
    public_key = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        token,
        public_key,
        algorithms=["RS256"],
        audience=GRAPH_RESOURCE,
        issuer=f"{BASE_URL}/{DEFAULT_TENANT_ID}/v2.0",
    )
    assert claims["roles"] == ["User.Read.All"]


async def test_client_credentials(client: httpx.AsyncClient, state: EmulatorState) -> None:
    response = await client.post(TOKEN_PATH, data=cc_form())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["oid"] == state.tokens.sp_object_id
    assert claims["tid"] == DEFAULT_TENANT_ID and claims["ver"] == "2.0"

    own = await client.post(TOKEN_PATH, data=cc_form(scope=f"api://{DEFAULT_CLIENT_ID}/.default"))
    own_claims = jwt.decode(own.json()["access_token"], options={"verify_signature": False})
    assert own_claims["aud"] == f"api://{DEFAULT_CLIENT_ID}"
    # The app's own API: the app roles granted to the client (--app-roles).
    assert own_claims["roles"] == ["Profiles.Read", "Profiles.Sync"]


async def test_client_secret_basic(client: httpx.AsyncClient) -> None:
    basic = base64.b64encode(f"{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}".encode()).decode()
    response = await client.post(
        TOKEN_PATH,
        data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        (cc_form(client_secret="wrong"), 401, "invalid_client", 7000215),
        (cc_form(client_id="00000000-0000-0000-0000-00000000abcd"), 401, "invalid_client", 700016),
        (cc_form(client_secret=""), 401, "invalid_client", 7000218),
        (cc_form(grant_type="authorization_code"), 400, "unsupported_grant_type", 70003),
        (cc_form(grant_type=""), 400, "invalid_request", 900144),
        (cc_form(scope=""), 400, "invalid_request", 900144),
        (cc_form(scope="User.Read"), 400, "invalid_scope", 1002012),
        (cc_form(scope="https://outlook.office.com/.default"), 400, "invalid_resource", 500011),
    ],
)
async def test_token_errors(
    client: httpx.AsyncClient, form: dict[str, str], status: int, error: str, code: int
) -> None:
    assert_entra_error(await client.post(TOKEN_PATH, data=form), status, error, code)


async def test_token_endpoint_refuses_json_and_get(client: httpx.AsyncClient) -> None:
    assert_entra_error(
        await client.post(TOKEN_PATH, json=cc_form()), 400, "invalid_request", 900144
    )
    assert_entra_error(await client.get(TOKEN_PATH), 400, "invalid_request", 900561)


async def test_on_behalf_of(client: httpx.AsyncClient, state: EmulatorState) -> None:
    user = first_user(state)
    assertion = await mint(client, user=user["userPrincipalName"])
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "assertion": assertion,
        "requested_token_use": "on_behalf_of",
        "scope": f"{GRAPH_SCOPE} openid profile offline_access",
        "client_info": "1",
    }
    response = await client.post(TOKEN_PATH, data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == GRAPH_RESOURCE and claims["oid"] == user["id"]
    assert set(claims["scp"].split()) == {"User.ReadWrite", "User.Read.All"}
    assert claims["upn"] == user["userPrincipalName"]
    assert "id_token" in body and "client_info" in body

    # An application token cannot be exchanged; neither can a Graph token.
    app_token = await mint(client, roles=["Profiles.Read"])
    bad = await client.post(TOKEN_PATH, data={**form, "assertion": app_token})
    assert_entra_error(bad, 400, "invalid_grant", 50058)
    graph_token = await mint(client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE)
    bad = await client.post(TOKEN_PATH, data={**form, "assertion": graph_token})
    assert_entra_error(bad, 400, "invalid_grant", 50013)
    expired = await mint(client, user=user["userPrincipalName"], expiresIn=-60)
    bad = await client.post(TOKEN_PATH, data={**form, "assertion": expired})
    assert_entra_error(bad, 400, "invalid_grant", 50013)
    bad = await client.post(TOKEN_PATH, data={**form, "assertion": "garbage"})
    assert_entra_error(bad, 400, "invalid_grant", 50013)


def password_form(user: dict[str, Any], **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "password",
        "client_id": DEFAULT_CLIENT_ID,
        "username": user["userPrincipalName"],
        "password": DEFAULT_USER_PASSWORD,
        "scope": "https://graph.microsoft.com/User.Read openid profile offline_access",
        "client_info": "1",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v != ""}


async def test_password_grant(client: httpx.AsyncClient, state: EmulatorState) -> None:
    """ROPC signs an emulated user in with the configured password; the token is delegated
    (scp, oid, upn) for the one resource the scopes name."""
    user = first_user(state)
    response = await client.post(TOKEN_PATH, data=password_form(user))
    assert response.status_code == 200, response.text
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == GRAPH_RESOURCE and claims["oid"] == user["id"]
    assert claims["scp"] == "User.Read" and "roles" not in claims
    assert claims["tid"] == DEFAULT_TENANT_ID and claims["exp"] > claims["iat"]
    assert body["scope"] == "https://graph.microsoft.com/User.Read"
    assert "id_token" in body and "client_info" in body

    # A confidential client may authenticate too; bare Graph scopes and .default work.
    response = await client.post(
        TOKEN_PATH,
        data=password_form(
            user, client_secret=DEFAULT_CLIENT_SECRET, scope="User.ReadWrite User.Read.All"
        ),
    )
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert set(claims["scp"].split()) == {"User.ReadWrite", "User.Read.All"}
    response = await client.post(
        TOKEN_PATH, data=password_form(user, scope=f"api://{DEFAULT_CLIENT_ID}/.default")
    )
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == f"api://{DEFAULT_CLIENT_ID}" and claims["scp"] == "Profiles.ReadWrite"

    # The token works against Graph as that user.
    graph_token = (await client.post(TOKEN_PATH, data=password_form(user))).json()
    me = await client.get(
        "/v1.0/me", headers={"Authorization": f"Bearer {graph_token['access_token']}"}
    )
    assert me.json()["id"] == user["id"]


async def test_password_grant_errors(client: httpx.AsyncClient, state: EmulatorState) -> None:
    user = first_user(state)
    cases = [
        (password_form(user, password="wrong"), 400, "invalid_grant", 50126),
        (
            password_form(user, username="ghost@" + DEFAULT_TENANT_DOMAIN),
            400,
            "invalid_grant",
            50034,
        ),
        (password_form(user, username=""), 400, "invalid_request", 900144),
        (password_form(user, password=""), 400, "invalid_request", 900144),
        (password_form(user, client_secret="wrong"), 401, "invalid_client", 7000215),
        (
            password_form(user, scope=f"User.Read api://{DEFAULT_CLIENT_ID}/Profiles.ReadWrite"),
            400,
            "invalid_scope",
            28000,
        ),
        (password_form(user, scope="User.ReadWrite.All"), 400, "invalid_grant", 65001),
        (
            password_form(user, scope="https://outlook.office.com/Mail.Read"),
            400,
            "invalid_resource",
            500011,
        ),
    ]
    for form, status, error, code in cases:
        assert_entra_error(await client.post(TOKEN_PATH, data=form), status, error, code)
    await client.post(f"/_emulator/users/{user['id']}/edit", json={"accountEnabled": False})
    disabled = await client.post(TOKEN_PATH, data=password_form(user))
    assert_entra_error(disabled, 400, "invalid_grant", 50057)


async def test_user_password_is_configurable(signing_key: Any) -> None:
    from devtools.graph_emulator.app import create_app

    state = EmulatorState.build(users=5, signing_key=signing_key, user_password="s3cret-Pw!")
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        user = first_user(state)
        default = await http.post(TOKEN_PATH, data=password_form(user))
        assert_entra_error(default, 400, "invalid_grant", 50126)
        ok = await http.post(TOKEN_PATH, data=password_form(user, password="s3cret-Pw!"))
        assert ok.status_code == 200


async def test_user_realm_discovery(client: httpx.AsyncClient, state: EmulatorState) -> None:
    """MSAL asks the user realm before a password grant: tenant users are managed."""
    user = first_user(state)
    realm = await client.get(f"/common/userrealm/{user['userPrincipalName']}?api-version=1.0")
    assert realm.json()["account_type"] == "Managed"
    other = await client.get("/common/userrealm/someone@example.com?api-version=1.0")
    assert other.json()["account_type"] == "Unknown"


async def test_app_roles_are_configurable(signing_key: Any) -> None:
    """Client-credentials tokens for the app's own API carry the app roles granted to the
    client; Graph tokens carry Graph's application permissions."""
    from devtools.graph_emulator.app import create_app

    state = EmulatorState.build(users=5, signing_key=signing_key, app_roles=("Profiles.Read",))
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        for scope in (f"api://{DEFAULT_CLIENT_ID}/.default", f"{DEFAULT_CLIENT_ID}/.default"):
            own = await http.post(TOKEN_PATH, data=cc_form(scope=scope))
            claims = jwt.decode(own.json()["access_token"], options={"verify_signature": False})
            assert claims["roles"] == ["Profiles.Read"]
            assert claims["aud"] == f"api://{DEFAULT_CLIENT_ID}" and claims["idtyp"] == "app"
        graph = await http.post(TOKEN_PATH, data=cc_form())
        claims = jwt.decode(graph.json()["access_token"], options={"verify_signature": False})
        assert claims["roles"] == ["User.Read.All"]


async def test_on_behalf_of_keeps_the_users_directory_roles(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    admin_role = "fe930be7-5e62-47db-91af-98c3a49a38b1"
    user = first_user(state)
    assertion = await mint(client, user=user["userPrincipalName"], wids=[admin_role])
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "assertion": assertion,
        "requested_token_use": "on_behalf_of",
        "scope": GRAPH_SCOPE,
    }
    response = await client.post(TOKEN_PATH, data=form)
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["wids"] == [admin_role]
