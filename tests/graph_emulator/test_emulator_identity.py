from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest
from emulator_helpers import BASE_URL, first_user, mint

from services.graph_emulator.defaults import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT_ID,
    GRAPH_RESOURCE,
)
from services.graph_emulator.state import EmulatorState

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
    assert own_claims["roles"] == ["Profiles.Read"]


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
        (cc_form(grant_type="password"), 400, "unsupported_grant_type", 70003),
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
