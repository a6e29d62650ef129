"""Entra ID v2 endpoints: OpenID discovery, the key set, user realm discovery and the token
endpoint (its grants are in ``token_grants``)."""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devtools.graph_emulator.errors import EntraError, entra_error_body
from devtools.graph_emulator.graph_http import public_base_url
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.token_grants import GRANT_TYPES, PASSWORD, grant, missing
from devtools.graph_emulator.tokens import issuer_for

_NO_STORE: Final = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _known_tenant(state: EmulatorState, tenant: str) -> bool:
    return tenant.lower() in (state.tenant_id, state.domain.lower())


def entra_response(err: EntraError, request: Request) -> JSONResponse:
    correlation = request.headers.get("client-request-id")
    body = entra_error_body(err, correlation)
    headers = {"x-ms-request-id": body["trace_id"], **_NO_STORE}
    if correlation:
        headers["client-request-id"] = correlation
    return JSONResponse(body, status_code=err.status, headers=headers)


def _tenant_not_found(tenant: str) -> EntraError:
    return EntraError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud.",
    )


async def openid_configuration(request: Request) -> Response:
    state = _state(request)
    tenant = request.path_params["tenant"]
    if not _known_tenant(state, tenant):
        return entra_response(_tenant_not_found(tenant), request)
    base = public_base_url(state, request)
    tid = state.tenant_id
    return JSONResponse(
        {
            "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer_for(base, tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "cloud_instance_name",
                "cloud_instance_host_name",
                "cloud_graph_host_name",
                "msgraph_host",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/{tid}/kerberos",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            # Clients that read this find the emulator rather than the real Graph.
            "msgraph_host": request.url.netloc,
            "rbac_url": "https://pas.windows.net",
        },
        headers={"Cache-Control": "max-age=86400, private"},
    )


async def jwks(request: Request) -> Response:
    state = _state(request)
    tenant = request.path_params["tenant"]
    if not _known_tenant(state, tenant):
        return entra_response(_tenant_not_found(tenant), request)
    issuer = issuer_for(public_base_url(state, request), state.tenant_id)
    return JSONResponse({"keys": [state.tokens.key.jwk(issuer)]})


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """client_secret_post or client_secret_basic; return (client_id, secret)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise EntraError(
                401, "invalid_client", 7000215, "Invalid client secret provided."
            ) from exc
        basic_id, _, secret = decoded.partition(":")
        return basic_id, secret
    client_id = form.get("client_id")
    if not client_id:
        raise missing("client_id")
    return client_id, form.get("client_secret")


def _authenticate_client(
    state: EmulatorState, client_id: str, secret: str | None, *, required: bool = True
) -> None:
    """Check the app and its secret; ``required=False`` for public-client flows (password),
    where a secret is optional but must be right when sent."""
    if client_id.lower() != state.client_id:
        raise EntraError(
            401,
            "invalid_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{state.tenant_id}'. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in the tenant.",
        )
    if secret is None or secret == "":
        if not required:
            return
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    if not hmac.compare_digest(secret.encode(), state.client_secret.encode()):
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{state.client_id}'.",
        )


async def token_endpoint(request: Request) -> Response:
    state = _state(request)
    tenant = request.path_params["tenant"]
    try:
        if not _known_tenant(state, tenant):
            raise _tenant_not_found(tenant)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        form: dict[str, str] = {}
        if content_type == "application/x-www-form-urlencoded":
            try:
                form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                form = {}
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing("grant_type")
        if grant_type not in GRANT_TYPES:
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id, secret = _client_credentials(request, form)
        _authenticate_client(state, client_id, secret, required=grant_type != PASSWORD)
        issuer = issuer_for(public_base_url(state, request), state.tenant_id)
        body = grant(state, issuer, grant_type, form)
    except EntraError as err:
        return entra_response(err, request)
    headers = {"x-ms-request-id": str(uuid.uuid4()), **_NO_STORE}
    if "client-request-id" in request.headers:
        headers["client-request-id"] = request.headers["client-request-id"]
    return JSONResponse(body, headers=headers)


async def token_endpoint_get(request: Request) -> Response:
    err = EntraError(
        400,
        "invalid_request",
        900561,
        "The endpoint only accepts POST, OPTIONS requests. Received a GET request.",
    )
    return entra_response(err, request)


async def user_realm(request: Request) -> Response:
    """``GET /common/userrealm/{username}``: MSAL asks it before a password grant.

    Users of the emulated tenant are "Managed" (they sign in with a password here), never
    federated; any other domain is unknown.
    """
    state = _state(request)
    username = request.path_params["username"]
    domain = username.rpartition("@")[2]
    body: dict[str, str] = {"ver": "1.0", "cloud_instance_name": "microsoftonline.com"}
    if domain.lower() == state.domain.lower():
        body.update(
            account_type="Managed",
            domain_name=state.domain,
            cloud_audience_urn="urn:federation:MicrosoftOnline",
        )
    else:
        body["account_type"] = "Unknown"
    return JSONResponse(body)
