"""Writing LOB edits back to SharePoint Online through Graph.

Only the SharePoint-backed properties can be changed, in their own PATCH,
with a delegated token of the calling user (Graph refuses application
permissions for them). The written content's digest is recorded so the
differ can mark the resulting change as origin LOB.

Each write first takes a place under Graph's write quota, shared by every
replica (WriteBudget); past it the caller is refused at once, with the
seconds to wait.

`expectedVersion` is a check, then a write: Graph has no `If-Match` on users,
so the profile is read, compared and then patched. An edit made in Delve
between that read and the PATCH is overwritten. The window is kept as short
as the calls allow: the user's Graph token and a place in the write quota are
obtained first, so the PATCH follows the read's answer directly, and the
result names the version it was written over (the version read).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from profilesync.v1 import extender_pb2, profile_pb2
from services.common.auth import Principal
from services.common.entra import GRAPH_SCOPES, MsalTokens
from services.common.errors import InvalidArgument, VersionMismatch
from services.common.profiles import digest
from services.common.redis_keys import LOB_WRITES_KEY
from services.common.validation import validate
from services.profile_extender.convert import profile_from_graph
from services.profile_extender.graph_client import GraphClient
from services.profile_extender.write_budget import WriteBudget

__all__ = ["ProfileUpdater", "UpdateResult", "graph_changes"]

# Request field -> Graph property, for the lists.
_LIST_PROPERTIES = {
    "skills": "skills",
    "past_projects": "pastProjects",
    "schools": "schools",
    "interests": "interests",
}
_PROTO_FIELD = {graph: field for field, graph in _LIST_PROPERTIES.items()}


def _strings(values: struct_pb2.ListValue) -> list[str]:
    # The validator has already refused non-string items.
    return [value.string_value for value in values.values]


# REST body keys that are profile fields but cannot be written here.
_READ_ONLY = frozenset(
    {
        "id",
        "userPrincipalName",
        "displayName",
        "mail",
        "jobTitle",
        "department",
        "version",
        "fetchTime",
    }
)
_WRITABLE = ("aboutMe", "skills", "pastProjects", "schools", "interests")


def read_body(request: extender_pb2.UpdateProfileRequest) -> extender_pb2.UpdateProfileRequest:
    """The request with its REST `body` read into the typed fields, strictly:
    a misspelled or read-only field is refused by name, not ignored."""
    if not request.HasField("body"):
        return request
    result = extender_pb2.UpdateProfileRequest(id=request.id)
    for key, value in request.body.fields.items():
        kind = value.WhichOneof("kind")
        if key in _READ_ONLY:
            raise InvalidArgument(
                f"{key}: is read-only here (directory data comes from Entra ID); "
                f"the fields that can be changed are {', '.join(_WRITABLE)}"
            )
        if key == "aboutMe":
            if kind not in ("string_value", "null_value"):
                raise InvalidArgument("aboutMe: must be a string")
            result.about_me = value.string_value
        elif key == "expectedVersion":
            if kind != "string_value":
                raise InvalidArgument("expectedVersion: must be a string")
            result.expected_version = value.string_value
        elif key in _WRITABLE:
            field = _PROTO_FIELD[key]
            if kind == "null_value":
                getattr(result, field).SetInParent()  # null clears the list
            elif kind != "list_value":
                raise InvalidArgument(f"{key}: must be a list of strings")
            else:
                getattr(result, field).CopyFrom(value.list_value)
        else:
            raise InvalidArgument(
                f"{key}: unknown field; the fields that can be changed are "
                f"{', '.join(_WRITABLE)} (plus expectedVersion)"
            )
    validate(result)
    return result


def graph_changes(request: extender_pb2.UpdateProfileRequest) -> dict[str, Any]:
    """The Graph PATCH body for the fields present in the request."""
    changes: dict[str, Any] = {}
    if request.HasField("about_me"):
        changes["aboutMe"] = request.about_me
    for field, graph_name in _LIST_PROPERTIES.items():
        if request.HasField(field):
            changes[graph_name] = _strings(getattr(request, field))
    if not changes:
        raise InvalidArgument(
            "no field to change: give at least one of aboutMe, skills, pastProjects, "
            "schools, interests"
        )
    return changes


@dataclass(frozen=True)
class UpdateResult:
    profile: profile_pb2.Profile  # as Graph has it after the write
    # The version the write went over, as read just before it; empty when no
    # expectedVersion was given (then nothing is read before the write).
    replaced_version: str


@dataclass(frozen=True)
class ProfileUpdater:
    """Writes a LOB edit to Graph on behalf of the signed-in user (see the module doc)."""

    _graph: GraphClient
    _tokens: MsalTokens
    _redis: aioredis.Redis
    _writes: WriteBudget

    async def update(
        self, request: extender_pb2.UpdateProfileRequest, caller: Principal
    ) -> UpdateResult:
        request = read_body(request)
        changes = graph_changes(request)
        target = request.id  # Graph takes an object id or a UPN in the path
        await self._writes.admit()
        graph_token = await self._tokens.on_behalf_of(caller.token, GRAPH_SCOPES)
        replaced = ""
        if request.expected_version:
            # Everything else is ready: from this read's answer to the PATCH
            # there is only the comparison.
            current = await self._graph.get_user(request.id)
            replaced = digest(current)
            if replaced != request.expected_version:
                raise VersionMismatch(
                    f"profile {request.id!r} changed since version {request.expected_version}; "
                    f"current version is {replaced}"
                )
            target = str(current["id"])
        # Without a version to check, no read before the write: Graph answers 404
        # for a user that does not exist and 403 for a profile not the caller's.
        await self._graph.patch_user(target, changes, graph_token)
        updated = await self._graph.get_user(target)
        profile = profile_from_graph(updated, dt.datetime.now(dt.UTC))
        await self._redis.hset(LOB_WRITES_KEY, profile.id, profile.version)
        return UpdateResult(profile, replaced)
