"""Writing LOB edits back to SharePoint Online through Graph.

Only the SharePoint-backed properties can be changed, in their own PATCH,
with a delegated token of the calling user (Graph refuses application
permissions for them). The written content's digest is recorded so the
differ can mark the resulting change as origin LOB.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from profilesync.v1 import extender_pb2, profile_pb2
from services.common.errors import InvalidArgument, VersionMismatch
from services.common.profiles import digest
from services.common.redis_keys import LOB_WRITES_KEY
from services.profile_extender.convert import profile_from_graph
from services.profile_extender.graph_client import GraphClient
from services.profile_extender.tokens import AppTokenProvider

__all__ = ["ProfileUpdater", "graph_changes"]

# Request field -> Graph property, for the lists.
_LIST_PROPERTIES = {
    "skills": "skills",
    "past_projects": "pastProjects",
    "schools": "schools",
    "interests": "interests",
}


def _strings(values: struct_pb2.ListValue) -> list[str]:
    # The validator has already refused non-string items.
    return [value.string_value for value in values.values]


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
    def __init__(self, graph: GraphClient, tokens: AppTokenProvider, redis: aioredis.Redis) -> None:
        self._graph = graph
        self._tokens = tokens
        self._redis = redis

    async def update(
        self, request: extender_pb2.UpdateProfileRequest, user_token: str
    ) -> profile_pb2.Profile:
        changes = graph_changes(request)
        current = await self._graph.get_user(request.id)
        if request.expected_version and digest(current) != request.expected_version:
            raise VersionMismatch(
                f"profile {request.id!r} changed since version {request.expected_version}; "
                f"current version is {digest(current)}"
            )
        graph_token = await self._tokens.on_behalf_of(user_token)
        await self._graph.patch_user(str(current["id"]), changes, graph_token)
        updated = await self._graph.get_user(str(current["id"]))
        profile = profile_from_graph(updated, dt.datetime.now(dt.UTC))
        await self._redis.hset(LOB_WRITES_KEY, profile.id, profile.version)
        return profile
