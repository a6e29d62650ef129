"""The emulator's own admin API (``/_emulator``): not part of Graph, no authentication.

It stands in for edits made elsewhere (Delve, the SharePoint profile page), lets tests tune
throttling and failures, and mints tokens so tests need no interactive sign-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devtools.graph_emulator.accounts import profile_read_error, set_sharepoint
from devtools.graph_emulator.call import load_json
from devtools.graph_emulator.defaults import GRAPH_APP_ID, GRAPH_RESOURCE, app_id_uri
from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.graph_http import error_response, public_base_url
from devtools.graph_emulator.schema import (
    DIRECTORY_WRITABLE,
    SEPARATE_PATCH_PROPERTIES,
    USER_PROPERTIES,
    UserRecord,
    property_value,
)
from devtools.graph_emulator.settings import ConfigError, updated_config
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.tenant import generate_user
from devtools.graph_emulator.tokens import TOKEN_LIFETIME, issuer_for
from devtools.graph_emulator.user_changes import validate_changes

#: An edit "made in Delve" may touch the profile and the directory in one go.
ADMIN_WRITABLE: Final = DIRECTORY_WRITABLE | SEPARATE_PATCH_PROPERTIES | {"hireDate"}
#: Delegated scopes of a user token minted for the profile-sync API.
DEFAULT_APP_SCOPES: Final = ("Profiles.ReadWrite",)
DEFAULT_GRAPH_SCOPES: Final = ("User.ReadWrite", "User.Read.All")

Endpoint = Callable[[Request], Awaitable[Response]]


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def admin_endpoint(handler: Callable[[Request], Awaitable[Response]]) -> Endpoint:
    """Answer GraphError (and anything unexpected) in Graph's error shape."""

    async def wrapped(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or request_id
        try:
            response = await handler(request)
        except GraphError as err:
            return error_response(
                err.status, err.code, err.message, request_id, client_request_id, err.headers
            )
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = client_request_id
        return response

    return wrapped


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("Empty Payload. JSON content expected.", code="BadRequest")
    try:
        return load_json(raw)
    except ValueError as exc:
        raise bad_request("The request body is not valid JSON.", code="BadRequest") from exc


def full_user(user: UserRecord) -> dict[str, Any]:
    """Every property the emulator knows, as a single-user $select of all would show it."""
    return {name: property_value(user, name) for name in USER_PROPERTIES}


def _find(state: EmulatorState, key: str) -> UserRecord:
    user = state.store.resolve(key)
    if user is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property "
            "objects are not present.",
        )
    return user


def _check_upn_free(state: EmulatorState, changes: dict[str, Any], owner: str | None) -> None:
    upn = changes.get("userPrincipalName")
    if isinstance(upn, str):
        current = state.store.upn_owner(upn)
        if current is not None and current != owner:
            raise GraphError(
                409,
                "Request_BadRequest",
                "Another object with the same value for property userPrincipalName already exists.",
            )


async def get_config(request: Request) -> Response:
    return JSONResponse(_state(request).config.to_json())


async def put_config(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request)
    try:
        config = updated_config(state.config, body)
    except ConfigError as err:
        raise bad_request(str(err)) from err
    state.set_config(config)
    return JSONResponse(state.config.to_json())


async def edit_user(request: Request) -> Response:
    state = _state(request)
    user = _find(state, request.path_params["id"])
    changes = validate_changes(await _json_body(request), ADMIN_WRITABLE, state.domain)
    _check_upn_free(state, changes, user["id"])
    state.store.update(user["id"], changes)
    return JSONResponse(full_user(user))


async def set_user_sharepoint(request: Request) -> Response:
    """``{"licensed": bool, "personalSite": bool}`` (either or both): gives or takes the
    user's SharePoint Online licence (their ``assignedPlans``) and personal site, as an
    administrator would; answers the user with ``hasProfile``."""
    state = _state(request)
    user = _find(state, request.path_params["id"])
    body = await _json_body(request)
    if not isinstance(body, dict) or not body:
        raise bad_request(
            "The request body must be a JSON object with 'licensed' or 'personalSite'."
        )
    unknown = sorted(set(body) - {"licensed", "personalSite"})
    if unknown:
        raise bad_request(f"Unknown field '{unknown[0]}': use 'licensed' or 'personalSite'.")
    for name, value in body.items():
        if not isinstance(value, bool):
            raise bad_request(f"'{name}' must be true or false.")
    set_sharepoint(user, licensed=body.get("licensed"), personal_site=body.get("personalSite"))
    return JSONResponse({**full_user(user), "hasProfile": profile_read_error(user) is None})


async def create_group(request: Request) -> Response:
    """``{"displayName": str, "members": [user or group ids]}``: a security group; answers it
    with its new id (201)."""
    state = _state(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="BadRequest")
    unknown = sorted(set(body) - {"displayName", "members"})
    if unknown:
        raise bad_request(f"Unknown field '{unknown[0]}': use 'displayName' and 'members'.")
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise bad_request("'displayName' must be a non-empty string of at most 256 characters.")
    members = body.get("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise bad_request("'members' must be a list of user or group ids.")
    resolved: list[str] = []
    for member in members:
        if member.lower() in state.groups:
            resolved.append(member.lower())
            continue
        user = state.store.resolve(member)
        if user is None:
            raise bad_request(f"'members': no user or group '{member}'.")
        resolved.append(user["id"])
    group_id = str(uuid.UUID(int=state.create_rng.getrandbits(128), version=4))
    group = {"id": group_id, "displayName": name, "members": list(dict.fromkeys(resolved))}
    state.groups[group_id] = group
    return JSONResponse(group, status_code=201)


async def get_user(request: Request) -> Response:
    return JSONResponse(full_user(_find(_state(request), request.path_params["id"])))


async def create_user(request: Request) -> Response:
    state = _state(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="BadRequest")
    fields = dict(body)
    new_id = fields.pop("id", None)
    if new_id is not None:
        try:
            new_id = str(uuid.UUID(str(new_id)))
        except ValueError as exc:
            raise bad_request(
                "Invalid value specified for property 'id' of resource 'User'."
            ) from exc
        if state.store.resolve(new_id) is not None:
            raise GraphError(
                409, "Request_BadRequest", f"A user with id '{new_id}' already exists."
            )
    changes = validate_changes(fields, ADMIN_WRITABLE, state.domain)
    # Start from a generated user so every property has a realistic value, then apply
    # what the caller asked for.
    taken: dict[str, int] = {}
    user = generate_user(state.create_rng, taken, state.domain)
    while state.store.upn_owner(user["userPrincipalName"]) is not None:
        user = generate_user(state.create_rng, taken, state.domain)
    if new_id is not None:
        user["id"] = new_id
    while state.store.resolve(user["id"]) is not None:
        user["id"] = str(uuid.UUID(int=state.create_rng.getrandbits(128), version=4))
    _check_upn_free(state, changes, None)
    user.update(changes)
    if "userPrincipalName" in changes and "mail" not in changes:
        user["mail"] = changes["userPrincipalName"]
    state.store.add(user)
    return JSONResponse(full_user(user), status_code=201)


async def delete_user(request: Request) -> Response:
    state = _state(request)
    user = _find(state, request.path_params["id"])
    state.store.remove(user["id"])
    return Response(status_code=204)


async def get_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats.to_json())


async def reset_stats(request: Request) -> Response:
    state = _state(request)
    state.stats = type(state.stats)()
    return Response(status_code=204)


def _string_list(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"'{name}' must be a list of strings.")
    return list(value)


_TOKEN_FIELDS: Final = frozenset(
    {"user", "roles", "audience", "scopes", "expiresIn", "clientId", "wids"}
)


def _guid(value: object, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise bad_request(f"'{name}' must be a GUID.") from exc


async def mint_token(request: Request) -> Response:
    """A token without a sign-in: ``{"user": upn}`` (delegated) or ``{"roles": [...]}`` (app).

    Optional: ``audience`` (the app id URI by default, or Graph), ``scopes`` (user tokens),
    ``wids`` (directory role template ids of the user), ``clientId`` (an app token of another
    app registration, to tell apps apart in throttling), ``expiresIn`` (seconds; negative
    mints an expired token).
    """
    state = _state(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="BadRequest")
    unknown = sorted(set(body) - _TOKEN_FIELDS)
    if unknown:
        raise bad_request(f"Unknown field '{unknown[0]}'.")
    audience = body.get("audience", app_id_uri(state.client_id))
    allowed = {app_id_uri(state.client_id), state.client_id, GRAPH_RESOURCE, GRAPH_APP_ID}
    if not isinstance(audience, str) or audience.lower() not in allowed:
        raise bad_request(
            "'audience' must be the app id URI, the client id, "
            f"'{GRAPH_RESOURCE}' or '{GRAPH_APP_ID}'."
        )
    lifetime = body.get("expiresIn", TOKEN_LIFETIME)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or abs(lifetime) > 86_400:
        raise bad_request(
            "'expiresIn' must be an integer number of seconds (|n| <= 86400); "
            "negative values mint an already expired token."
        )
    is_graph = audience.lower() in (GRAPH_RESOURCE, GRAPH_APP_ID)
    issuer = issuer_for(public_base_url(state, request), state.tenant_id)
    roles = _string_list(body, "roles")
    scopes = _string_list(body, "scopes")
    wids = _string_list(body, "wids")
    user_key = body.get("user")
    if (user_key is None) == (roles is None):
        raise bad_request(
            "Give exactly one of 'user' (a delegated token) or 'roles' (an application token)."
        )
    if user_key is not None:
        if not isinstance(user_key, str):
            raise bad_request("'user' must be a user principal name or object id.")
        if "clientId" in body:
            raise bad_request("'clientId' applies to application tokens only.")
        user = _find(state, user_key)
        if scopes is None:
            scopes = list(DEFAULT_GRAPH_SCOPES if is_graph else DEFAULT_APP_SCOPES)
        token = state.tokens.user_token(
            issuer, audience, user, scopes, lifetime, wids=[_guid(w, "wids") for w in wids or []]
        )
    else:
        if scopes is not None or wids is not None:
            raise bad_request("'scopes' and 'wids' apply to user tokens only.")
        app_id = _guid(body["clientId"], "clientId") if "clientId" in body else None
        token = state.tokens.app_token(issuer, audience, roles or [], lifetime, app_id=app_id)
    state.stats.tokens_issued += 1
    return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})


async def health(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(
        {
            "status": "ok",
            "users": len(state.store),
            "tenantId": state.tenant_id,
            "tenantMix": state.mix.to_json(),
        }
    )
