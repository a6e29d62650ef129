"""Graph v1.0 user resources: list, get, /me and PATCH."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .call import GraphCall, GraphResult
from .errors import GraphError, bad_request
from .odata import (
    decode_skiptoken,
    encode_skiptoken,
    parse_select,
    parse_top,
    reject_unsupported,
)
from .permissions import require_directory_write, require_profile_write, require_read
from .schema import (
    DEFAULT_PROPERTIES,
    DIRECTORY_WRITABLE,
    SEPARATE_PATCH_PROPERTIES,
    UserRecord,
    property_value,
)
from .state import EmulatorState
from .user_changes import validate_changes


def not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def project(user: UserRecord, selected: list[str] | None) -> dict[str, Any]:
    names = selected if selected is not None else DEFAULT_PROPERTIES
    return {name: property_value(user, name) for name in names}


def _context(base_url: str, selected: list[str] | None, entity: bool) -> str:
    shape = f"users({','.join(selected)})" if selected else "users"
    return f"{base_url}/v1.0/$metadata#{shape}{'/$entity' if entity else ''}"


def list_users(state: EmulatorState, call: GraphCall) -> GraphResult:
    options = call.query()
    reject_unsupported(options, ("$select", "$top", "$skiptoken"))
    require_read(call.principal, None)
    selected = parse_select(options.get("$select"), collection=True)
    top = parse_top(options.get("$top"))
    after = decode_skiptoken(options["$skiptoken"]) if "$skiptoken" in options else None
    users, more = state.store.page_after(after, top)
    body: dict[str, Any] = {
        "@odata.context": _context(call.base_url, selected, entity=False),
        "value": [project(user, selected) for user in users],
    }
    if more and users:
        params = {"$top": str(top)}
        if "$select" in options:
            params["$select"] = options["$select"]
        params["$skiptoken"] = encode_skiptoken(users[-1]["id"])
        body["@odata.nextLink"] = f"{call.base_url}/v1.0/users?{urlencode(params, safe='$,')}"
    return GraphResult.json(body)


def _resolve(state: EmulatorState, key: str) -> UserRecord:
    user = state.store.resolve(key)
    if user is None:
        raise not_found(key)
    return user


def get_user(state: EmulatorState, call: GraphCall, key: str) -> GraphResult:
    options = call.query()
    reject_unsupported(options, ("$select",))
    selected = parse_select(options.get("$select"), collection=False)
    user = state.store.resolve(key)
    # Permission first for other users, so callers without rights learn nothing about ids.
    require_read(call.principal, user["id"] if user else None)
    if user is None:
        raise not_found(key)
    body = {"@odata.context": _context(call.base_url, selected, entity=True)}
    body.update(project(user, selected))
    return GraphResult.json(body)


def _me_key(call: GraphCall) -> str:
    if call.principal.kind != "user":
        raise bad_request(
            "/me request is only valid with delegated authentication flow.", code="BadRequest"
        )
    return call.principal.object_id


def get_me(state: EmulatorState, call: GraphCall) -> GraphResult:
    return get_user(state, call, _me_key(call))


def patch_me(state: EmulatorState, call: GraphCall) -> GraphResult:
    return patch_user(state, call, _me_key(call))


def patch_user(state: EmulatorState, call: GraphCall, key: str) -> GraphResult:
    body = call.json_body()
    changes = validate_changes(body, DIRECTORY_WRITABLE | SEPARATE_PATCH_PROPERTIES, state.domain)
    if not changes:
        raise bad_request("Empty Payload. JSON content expected.", code="BadRequest")
    profile = sorted(name for name in changes if name in SEPARATE_PATCH_PROPERTIES)
    directory = sorted(name for name in changes if name not in SEPARATE_PATCH_PROPERTIES)
    if profile and directory:
        raise bad_request(
            "The properties "
            + ", ".join(profile)
            + " must be updated in their own PATCH request, without other user properties "
            "(" + ", ".join(directory) + ")."
        )
    user = state.store.resolve(key)
    if user is None:
        require_read(call.principal, None)
        raise not_found(key)
    if profile:
        require_profile_write(call.principal, user["id"])
    else:
        require_directory_write(call.principal, user["id"])
    upn = changes.get("userPrincipalName")
    if isinstance(upn, str):
        owner = state.store.upn_owner(upn)
        if owner is not None and owner != user["id"]:
            raise bad_request(
                "Another object with the same value for property userPrincipalName already exists.",
            )
    state.store.update(user["id"], changes)
    return GraphResult.no_content()
