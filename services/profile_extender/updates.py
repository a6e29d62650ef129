"""Writing LOB edits back to SharePoint Online through Graph.

Only the SharePoint-backed properties can be changed, in their own PATCH,
with a delegated token of the calling user (Graph refuses application
permissions for them). The written content's digest is recorded so the
differ can mark the resulting change as origin LOB.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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

__all__ = ["ProfileUpdater", "graph_changes"]

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


class ProfileUpdater:
    def __init__(self, graph: GraphClient, tokens: MsalTokens, redis: aioredis.Redis) -> None:
        self._graph = graph
        self._tokens = tokens
        self._redis = redis

    async def update(
        self, request: extender_pb2.UpdateProfileRequest, caller: Principal
    ) -> profile_pb2.Profile:
        request = read_body(request)
        changes = graph_changes(request)
        target = request.id  # Graph takes an object id or a UPN in the path
        if request.expected_version:
            # The version check needs the profile as it is now: read it while the
            # user's token is exchanged, rather than one after the other.
            current, graph_token = await asyncio.gather(
                self._graph.get_user(request.id),
                self._tokens.on_behalf_of(caller.token, GRAPH_SCOPES),
            )
            if digest(current) != request.expected_version:
                raise VersionMismatch(
                    f"profile {request.id!r} changed since version {request.expected_version}; "
                    f"current version is {digest(current)}"
                )
            target = str(current["id"])
        else:
            # Without a version to check, no read before the write: Graph answers 404
            # for a user that does not exist and 403 for a profile not the caller's.
            graph_token = await self._tokens.on_behalf_of(caller.token, GRAPH_SCOPES)
        await self._graph.patch_user(target, changes, graph_token)
        updated = await self._graph.get_user(target)
        profile = profile_from_graph(updated, dt.datetime.now(dt.UTC))
        await self._redis.hset(LOB_WRITES_KEY, profile.id, profile.version)
        return profile
