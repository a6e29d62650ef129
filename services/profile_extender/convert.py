"""Graph user objects to Profile messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from profilesync.v1 import profile_pb2
from services.common.profiles import LIST_FIELDS, TEXT_FIELDS, digest

__all__ = ["profile_from_graph"]

# Graph's lowerCamelCase names to the Profile message's field names.
_PROTO_NAME = {
    "id": "id",
    "userPrincipalName": "user_principal_name",
    "displayName": "display_name",
    "mail": "mail",
    "jobTitle": "job_title",
    "department": "department",
    "aboutMe": "about_me",
    "skills": "skills",
    "pastProjects": "past_projects",
    "schools": "schools",
    "interests": "interests",
}


def profile_from_graph(user: Mapping[str, Any], fetched: dt.datetime) -> profile_pb2.Profile:
    """The profile as Graph returned it (null text becomes "", null lists
    become empty), with `version` = the digest of its canonical form."""
    profile = profile_pb2.Profile(version=digest(user))
    for name in TEXT_FIELDS:
        setattr(profile, _PROTO_NAME[name], str(user.get(name) or ""))
    for name in LIST_FIELDS:
        getattr(profile, _PROTO_NAME[name]).extend(
            str(item) for item in (user.get(name) or []) if item is not None
        )
    profile.fetch_time.FromDatetime(fetched)
    return profile
