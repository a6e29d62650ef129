"""Graph user objects to Profile messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from profilesync.v1 import profile_pb2
from services.common.profile_messages import profile_from_dict
from services.common.profiles import digest

__all__ = ["profile_from_graph"]


def profile_from_graph(user: Mapping[str, Any], fetched: dt.datetime) -> profile_pb2.Profile:
    """The profile as Graph returned it (null text becomes "", null lists
    become empty), with `version` = the digest of its canonical form."""
    profile = profile_from_dict(user)
    profile.version = digest(user)
    profile.fetch_time.FromDatetime(fetched)
    return profile
