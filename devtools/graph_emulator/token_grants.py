"""The grants of the Entra ID v2 token endpoint: client credentials, on-behalf-of and the
resource-owner password grant, with Entra's scope rules and AADSTS errors.

    body = grant(state, issuer, "client_credentials", form)

The emulator knows one app registration (the profile-sync app). It has admin consent for
Graph's application permission ``User.Read.All`` and the delegated ``User.Read``,
``User.ReadWrite`` and ``User.Read.All``; it exposes its own API with the app roles given by
``--app-roles`` and the delegated scope ``Profiles.ReadWrite``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from devtools.graph_emulator.defaults import GRAPH_APP_ID, GRAPH_RESOURCE, app_id_uri
from devtools.graph_emulator.errors import EntraError
from devtools.graph_emulator.schema import UserRecord
from devtools.graph_emulator.signing_key import b64url
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.tokens import TOKEN_LIFETIME, TokenError

CLIENT_CREDENTIALS: Final = "client_credentials"
JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PASSWORD: Final = "password"  # noqa: S105 - the grant type, not a secret
GRANT_TYPES: Final = (CLIENT_CREDENTIALS, JWT_BEARER, PASSWORD)

#: Delegated Graph permissions a ``/.default`` request yields (admin-consented for the app).
OBO_GRAPH_SCOPES: Final = ("User.ReadWrite", "User.Read.All")
#: Delegated Graph permissions the app has consent for; asking for others needs consent.
GRAPH_CONSENTED_SCOPES: Final = frozenset({"User.Read", "User.ReadWrite", "User.Read.All"})
#: Delegated scopes of the profile-sync API (the LOB app signs users in for it).
APP_SCOPES: Final = ("Profiles.ReadWrite",)
OIDC_SCOPES: Final = frozenset({"openid", "profile", "offline_access", "email"})


def missing(name: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _invalid_grant(code: int, message: str) -> EntraError:
    return EntraError(400, "invalid_grant", code, message)


def _audience_of(state: EmulatorState, resource: str) -> str:
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


def default_resource(state: EmulatorState, scope: str | None, flow: str) -> str:
    """The single ``<resource>/.default`` a client-credentials request names."""
    if not scope:
        raise missing("scope")
    resources = [s for s in scope.split() if s.lower() not in OIDC_SCOPES]
    if len(resources) != 1 or not resources[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. {flow} flows must have a "
            "scope value with /.default suffixed to the resource identifier (application ID "
            "URI).",
        )
    return _audience_of(state, resources[0][: -len("/.default")])


@dataclass(frozen=True)
class DelegatedScopes:
    audience: str
    scopes: tuple[str, ...]
    openid: bool

    @property
    def granted(self) -> str:
        """The ``scope`` of the answer: what the token carries, resource-qualified."""
        return " ".join(f"{self.audience}/{name}" for name in self.scopes)


def delegated_scopes(state: EmulatorState, scope: str | None) -> DelegatedScopes:
    """Resolve the scopes of a delegated request (on-behalf-of, password) to one resource."""
    if not scope:
        raise missing("scope")
    words = scope.split()
    openid = any(w.lower() == "openid" for w in words)
    requested = [w for w in words if w.lower() not in OIDC_SCOPES]
    if not requested:
        # Only sign-in scopes: Entra answers with a Graph token for User.Read.
        return DelegatedScopes(GRAPH_RESOURCE, ("User.Read",), openid)
    audiences: set[str] = set()
    names: list[str] = []
    for word in requested:
        resource, slash, name = word.rpartition("/")
        if not slash:
            resource, name = GRAPH_RESOURCE, word  # a bare scope is a Graph permission
        audiences.add(_audience_of(state, resource))
        names.append(name)
    if len(audiences) > 1:
        raise EntraError(
            400,
            "invalid_scope",
            28000,
            f"Provided value for the input parameter scope '{scope}' is not valid because it "
            "contains more than one resource.",
        )
    audience = audiences.pop()
    is_graph = audience == GRAPH_RESOURCE
    if ".default" in names:
        return DelegatedScopes(audience, OBO_GRAPH_SCOPES if is_graph else APP_SCOPES, openid)
    allowed = GRAPH_CONSENTED_SCOPES if is_graph else frozenset(APP_SCOPES)
    refused = [name for name in names if name not in allowed]
    if refused:
        raise _invalid_grant(
            65001,
            f"The user or administrator has not consented to use the application with ID "
            f"'{state.client_id}' for the scopes {', '.join(refused)}. Send an interactive "
            "authorization request for this user and resource.",
        )
    return DelegatedScopes(audience, tuple(dict.fromkeys(names)), openid)


def token_body(access_token: str, scope: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": access_token,
    }
    if scope is not None:
        body["scope"] = scope
    return body


def _user_token_body(
    state: EmulatorState,
    issuer: str,
    user: UserRecord,
    scopes: DelegatedScopes,
    form: dict[str, str],
    wids: Sequence[str] = (),
) -> dict[str, Any]:
    token = state.tokens.user_token(issuer, scopes.audience, user, scopes.scopes, wids=wids)
    state.stats.tokens_issued += 1
    body = token_body(token, scopes.granted)
    if scopes.openid:
        body["id_token"] = state.tokens.id_token(issuer, user)
    if form.get("client_info") == "1":
        # MSAL keys its account cache on client_info: {"uid": oid, "utid": tid}.
        info = json.dumps({"uid": user["id"], "utid": state.tenant_id}).encode()
        body["client_info"] = b64url(info)
    return body


def client_credentials_grant(
    state: EmulatorState, issuer: str, form: dict[str, str]
) -> dict[str, Any]:
    audience = default_resource(state, form.get("scope"), "Client credential")
    roles = state.graph_app_roles if audience == GRAPH_RESOURCE else state.self_app_roles
    state.stats.tokens_issued += 1
    return token_body(state.tokens.app_token(issuer, audience, roles))


def on_behalf_of_grant(state: EmulatorState, issuer: str, form: dict[str, str]) -> dict[str, Any]:
    assertion = form.get("assertion")
    if not assertion:
        raise missing("assertion")
    if form.get("requested_token_use") != "on_behalf_of":
        raise missing("requested_token_use")
    scopes = delegated_scopes(state, form.get("scope"))
    if scopes.audience != GRAPH_RESOURCE:
        raise _invalid_grant(
            65001, "The user or administrator has not consented to use the application."
        )
    try:
        principal = state.tokens.verify(assertion, (app_id_uri(state.client_id), state.client_id))
    except TokenError as exc:
        raise _invalid_grant(50013, f"Assertion failed signature validation. {exc}") from exc
    if principal.kind != "user":
        raise _invalid_grant(50058, "The assertion is not a user token; on-behalf-of needs a user.")
    user = state.store.resolve(principal.object_id)
    if user is None:
        raise _invalid_grant(50034, "The user account does not exist in the directory.")
    # The user's directory roles travel with them into the Graph token.
    return _user_token_body(state, issuer, user, scopes, form, sorted(principal.wids))


def password_grant(state: EmulatorState, issuer: str, form: dict[str, str]) -> dict[str, Any]:
    username = form.get("username")
    if not username:
        raise missing("username")
    password = form.get("password")
    if not password:
        raise missing("password")
    scopes = delegated_scopes(state, form.get("scope"))
    owner = state.store.upn_owner(username)
    user = state.store.resolve(owner) if owner is not None else None
    if user is None:
        raise _invalid_grant(
            50034,
            f"The user account {{EUII Hidden}} does not exist in the {state.tenant_id} "
            "directory. To sign into this application, the account must be added to the "
            "directory.",
        )
    if not hmac.compare_digest(password.encode(), state.user_password.encode()):
        raise _invalid_grant(
            50126, "Error validating credentials due to invalid username or password."
        )
    if user.get("accountEnabled") is False:
        raise _invalid_grant(50057, "The user account is disabled.")
    return _user_token_body(state, issuer, user, scopes, form)


def grant(
    state: EmulatorState, issuer: str, grant_type: str, form: dict[str, str]
) -> dict[str, Any]:
    if grant_type == CLIENT_CREDENTIALS:
        return client_credentials_grant(state, issuer, form)
    if grant_type == JWT_BEARER:
        return on_behalf_of_grant(state, issuer, form)
    return password_grant(state, issuer, form)
