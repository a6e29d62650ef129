"""Group membership, users only: ``GET /groups/{id}/members/microsoft.graph.user`` and
``GET /groups/{id}/transitiveMembers/microsoft.graph.user`` (nested groups flattened).

The OData cast to ``microsoft.graph.user`` keeps only users, as "List group transitive
members" documents (https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers);
its least privileged application permission is ``GroupMember.Read.All``. Pages of up to 999
users (default 100) come in id order, with ``$select``, ``$top`` and ``$skiptoken``. Groups
are made through the admin API (``POST /_emulator/groups``).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from devtools.graph_emulator.call import GraphCall, GraphResult
from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.odata import (
    decode_skiptoken,
    encode_skiptoken,
    parse_select,
    parse_top,
    reject_unsupported,
)
from devtools.graph_emulator.permissions import denied
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.users_api import project

#: Permissions that read group memberships (the least privileged first).
GROUP_READ_PERMISSIONS: Final = frozenset(
    {
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)


def _group_not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def member_user_ids(state: EmulatorState, group_id: str, *, transitive: bool) -> list[str]:
    """Ids of the users in the group (through nested groups when transitive), sorted."""
    users: set[str] = set()
    seen: set[str] = set()
    pending = [group_id]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for member in state.groups.get(current, {}).get("members", []):
            if member in state.groups:
                if transitive:
                    pending.append(member)
            elif state.store.resolve(member) is not None:
                users.add(member)
    return sorted(users)


def list_member_users(
    state: EmulatorState, call: GraphCall, group_id: str, relation: str
) -> GraphResult:
    options = call.query()
    reject_unsupported(options, ("$select", "$top", "$skiptoken"))
    principal = call.principal
    granted = principal.roles if principal.kind == "app" else principal.scopes
    if not granted & GROUP_READ_PERMISSIONS:
        raise denied()
    key = group_id.lower()
    if key not in state.groups:
        raise _group_not_found(group_id)
    selected = parse_select(options.get("$select"), collection=True)
    top = parse_top(options.get("$top"))
    after = decode_skiptoken(options["$skiptoken"]) if "$skiptoken" in options else None
    transitive = relation.lower() == "transitivemembers"
    ids = [
        i for i in member_user_ids(state, key, transitive=transitive) if after is None or i > after
    ]
    page = ids[:top]
    users = [state.store.resolve(user_id) for user_id in page]
    body: dict[str, Any] = {
        "@odata.context": f"{call.base_url}/v1.0/$metadata#users",
        "value": [project(user, selected) for user in users if user is not None],
    }
    if len(ids) > top and page:
        params = {"$top": str(top), "$skiptoken": encode_skiptoken(page[-1])}
        if "$select" in options:
            params["$select"] = options["$select"]
        segment = "transitiveMembers" if transitive else "members"
        body["@odata.nextLink"] = (
            f"{call.base_url}/v1.0/groups/{key}/{segment}/microsoft.graph.user?"
            + urlencode(params, safe="$,")
        )
    return GraphResult.json(body)
