"""Entra ID v2 endpoints: OpenID discovery, the key set, and the token endpoint."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import uuid
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .defaults import GRAPH_APP_ID, GRAPH_RESOURCE, app_id_uri
from .errors import EntraError, entra_error_body
from .graph_http import public_base_url
from .keys import b64url
from .state import EmulatorState
from .tokens import TOKEN_LIFETIME, TokenError, issuer_for

JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Delegated Graph permissions an on-behalf-of token carries (admin-consented for the app).
OBO_GRAPH_SCOPES: Final = ("User.ReadWrite", "User.Read.All")
_OIDC_SCOPES: Final = frozenset({"openid", "profile", "offline_access", "email"})
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


def _missing(name: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


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
        raise _missing("client_id")
    return client_id, form.get("client_secret")


def _authenticate_client(state: EmulatorState, client_id: str, secret: str | None) -> None:
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


def _resource_of(state: EmulatorState, scope: str | None, flow: str) -> str:
    """The single ``<resource>/.default`` a client-credentials or OBO request names."""
    if not scope:
        raise _missing("scope")
    resources = [s for s in scope.split() if s.lower() not in _OIDC_SCOPES]
    if len(resources) != 1 or not resources[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. {flow} flows must have a "
            "scope value with /.default suffixed to the resource identifier (application ID "
            "URI).",
        )
    resource = resources[0][: -len("/.default")]
    known = {
        GRAPH_RESOURCE: GRAPH_RESOURCE,
        GRAPH_APP_ID: GRAPH_RESOURCE,
        app_id_uri(state.client_id): app_id_uri(state.client_id),
        state.client_id: app_id_uri(state.client_id),
    }
    audience = known.get(resource.lower().rstrip("/"))
    if audience is None:
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named "
            f"{state.tenant_id}. This can happen if the application has not been installed by "
            "the administrator of the tenant or consented to by any user in the tenant.",
        )
    return audience


def _token_body(access_token: str, scope: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": access_token,
    }
    if scope is not None:
        body["scope"] = scope
    return body


def _client_credentials_grant(
    state: EmulatorState, request: Request, form: dict[str, str]
) -> dict[str, Any]:
    audience = _resource_of(state, form.get("scope"), "Client credential")
    roles = state.graph_app_roles if audience == GRAPH_RESOURCE else state.self_app_roles
    issuer = issuer_for(public_base_url(state, request), state.tenant_id)
    state.stats.tokens_issued += 1
    return _token_body(state.tokens.app_token(issuer, audience, roles))


def _on_behalf_of_grant(
    state: EmulatorState, request: Request, form: dict[str, str]
) -> dict[str, Any]:
    assertion = form.get("assertion")
    if not assertion:
        raise _missing("assertion")
    if form.get("requested_token_use") != "on_behalf_of":
        raise _missing("requested_token_use")
    audience = _resource_of(state, form.get("scope"), "On-behalf-of")
    if audience != GRAPH_RESOURCE:
        raise EntraError(
            400,
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application.",
        )
    try:
        principal = state.tokens.verify(assertion, (app_id_uri(state.client_id), state.client_id))
    except TokenError as exc:
        raise EntraError(
            400, "invalid_grant", 50013, f"Assertion failed signature validation. {exc}"
        ) from exc
    if principal.kind != "user":
        raise EntraError(
            400,
            "invalid_grant",
            50058,
            "The assertion is not a user token; on-behalf-of needs a user.",
        )
    user = state.store.resolve(principal.object_id)
    if user is None:
        raise EntraError(
            400, "invalid_grant", 50034, "The user account does not exist in the directory."
        )
    issuer = issuer_for(public_base_url(state, request), state.tenant_id)
    token = state.tokens.user_token(issuer, GRAPH_RESOURCE, user, OBO_GRAPH_SCOPES)
    state.stats.tokens_issued += 1
    granted = " ".join(f"{GRAPH_RESOURCE}/{s}" for s in OBO_GRAPH_SCOPES)
    body = _token_body(token, granted)
    requested = set(str(form.get("scope", "")).split())
    if "openid" in requested:
        body["id_token"] = state.tokens.id_token(issuer, user)
    if form.get("client_info") == "1":
        # MSAL keys its account cache on client_info: {"uid": oid, "utid": tid}.
        info = json.dumps({"uid": user["id"], "utid": state.tenant_id}).encode()
        body["client_info"] = b64url(info)
    return body


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
            raise _missing("grant_type")
        if grant_type not in ("client_credentials", JWT_BEARER):
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id, secret = _client_credentials(request, form)
        _authenticate_client(state, client_id, secret)
        if grant_type == "client_credentials":
            body = _client_credentials_grant(state, request, form)
        else:
            body = _on_behalf_of_grant(state, request, form)
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
