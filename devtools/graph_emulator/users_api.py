"""Graph v1.0 user resources: list, get, /me and PATCH."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from devtools.graph_emulator.accounts import profile_read_error
from devtools.graph_emulator.call import GraphCall, GraphResult
from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.odata import (
    decode_skiptoken,
    encode_skiptoken,
    parse_select,
    parse_top,
    reject_unsupported,
)
from devtools.graph_emulator.permissions import (
    BASIC_PROFILE,
    ReadAccess,
    read_access_to,
    require_directory_write,
    require_profile_write,
    require_read,
)
from devtools.graph_emulator.query_filter import Predicate, parse_filter
from devtools.graph_emulator.query_search import parse_search, search_needs_header
from devtools.graph_emulator.schema import (
    DEFAULT_PROPERTIES,
    DIRECTORY_WRITABLE,
    PROFILE_PROPERTIES,
    SEPARATE_PATCH_PROPERTIES,
    UserRecord,
    empty_value,
    property_value,
)
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.user_changes import validate_changes


def not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def project(
    user: UserRecord, selected: list[str] | None, access: ReadAccess = "full"
) -> dict[str, Any]:
    names = selected if selected is not None else DEFAULT_PROPERTIES
    if access == "basic":
        # Outside the basic profile Graph answers the property, empty (null or []).
        return {
            name: property_value(user, name) if name in BASIC_PROFILE else empty_value(name)
            for name in names
        }
    return {name: property_value(user, name) for name in names}


def _context(base_url: str, selected: list[str] | None, entity: bool) -> str:
    shape = f"users({','.join(selected)})" if selected else "users"
    return f"{base_url}/v1.0/$metadata#{shape}{'/$entity' if entity else ''}"


def _count_option(options: dict[str, str]) -> bool:
    raw = options.get("$count")
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise bad_request(
            f"Invalid value '{raw}' for $count query option found; use true or false.",
            code="BadRequest",
        )
    return value == "true"


def _user_predicate(call: GraphCall, options: dict[str, str]) -> Predicate | None:
    """The $filter and $search of a users request, combined; None when there are none.

    Advanced queries need ``ConsistencyLevel: eventual``, and ``$filter`` operators that
    are advanced-only also need ``$count=true``.
    """
    parts: list[Predicate] = []
    if "$search" in options:
        if not call.advanced_query:
            raise search_needs_header()
        parts.append(parse_search(options["$search"]))
    if "$filter" in options:
        advanced = call.advanced_query and _count_option(options)
        parts.append(parse_filter(options["$filter"], advanced=advanced))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return lambda user: all(part(user) for part in parts)


_LIST_OPTIONS = ("$select", "$top", "$skiptoken", "$filter", "$search", "$count")


def list_users(state: EmulatorState, call: GraphCall) -> GraphResult:
    options = call.query()
    reject_unsupported(options, _LIST_OPTIONS)
    access = require_read(call.principal, None)
    selected = parse_select(options.get("$select"), collection=True)
    top = parse_top(options.get("$top"))
    wants_count = _count_option(options)
    predicate = _user_predicate(call, options)
    after = decode_skiptoken(options["$skiptoken"]) if "$skiptoken" in options else None
    if predicate is None:
        users, more = state.store.page_after(after, top)
    else:
        users, more = state.store.matching_after(after, top, predicate)
    body: dict[str, Any] = {"@odata.context": _context(call.base_url, selected, entity=False)}
    # Without ConsistencyLevel Graph ignores $count=true; the count is on the first page only.
    if wants_count and call.advanced_query and after is None:
        body["@odata.count"] = state.store.count(predicate)
    body["value"] = [
        project(user, selected, read_access_to(call.principal, access, user["id"]))
        for user in users
    ]
    if more and users:
        params = {"$top": str(top)}
        for name in ("$select", "$filter", "$search", "$count"):
            if name in options:
                params[name] = options[name]
        params["$skiptoken"] = encode_skiptoken(users[-1]["id"])
        body["@odata.nextLink"] = f"{call.base_url}/v1.0/users?{urlencode(params, safe='$,')}"
    return GraphResult.json(body)


def count_users(state: EmulatorState, call: GraphCall) -> GraphResult:
    """``GET /users/$count``: a plain-text number, with advanced query headers only."""
    options = call.query()
    reject_unsupported(options, ("$filter", "$search"))
    require_read(call.principal, None)
    if not call.advanced_query:
        raise bad_request("$count is not currently supported.")
    # The segment itself asks for a count, so advanced $filter operators are allowed.
    parts: list[Predicate] = []
    if "$search" in options:
        parts.append(parse_search(options["$search"]))
    if "$filter" in options:
        parts.append(parse_filter(options["$filter"], advanced=True))
    count = state.store.count((lambda user: all(part(user) for part in parts)) if parts else None)
    return GraphResult(
        status=200, body=str(count), headers={"Content-Type": "text/plain;charset=utf-8"}
    )


def get_user(state: EmulatorState, call: GraphCall, key: str) -> GraphResult:
    options = call.query()
    reject_unsupported(options, ("$select",))
    selected = parse_select(options.get("$select"), collection=False)
    user = state.store.resolve(key)
    # Permission first for other users, so callers without rights learn nothing about ids.
    access = require_read(call.principal, user["id"] if user else None)
    if user is None:
        raise not_found(key)
    reads_profile = selected is not None and not PROFILE_PROPERTIES.isdisjoint(selected)
    if reads_profile:
        # Guests, rooms, unlicensed members, ... have no SharePoint profile to read.
        refusal = profile_read_error(user)
        if refusal is not None:
            result = GraphResult.from_error(refusal, call)
            result.delay = state.profile_read_delay()
            return result
    body = {"@odata.context": _context(call.base_url, selected, entity=True)}
    body.update(project(user, selected, access))
    result = GraphResult.json(body)
    if reads_profile:
        # These properties come from SharePoint Online, one user at a time: slow.
        result.delay = state.profile_read_delay()
    return result


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
        refusal = profile_read_error(user)
        if refusal is not None:
            # As reported for a PATCH of aboutMe, skills, ... in
            # https://github.com/microsoftgraph/microsoft-graph-docs/issues/4233
            raise refusal
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
