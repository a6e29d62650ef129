"""Profiles as dicts (lowerCamelCase, as Graph, snapshots, the baseline and
the search index keep them) and as Profile messages, in one place.

    message = profile_from_dict(stored)      # tolerant: nulls, missing keys
    stored = profile_to_dict(message)        # every field present
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from google.protobuf import json_format

from profilesync.v1 import profile_pb2
from services.common.profiles import LIST_FIELDS, TEXT_FIELDS

__all__ = ["profile_from_dict", "profile_to_dict"]

# lowerCamelCase names to the Profile message's field names.
_PROTO_NAME: Final = {
    name: field.name
    for field in profile_pb2.Profile.DESCRIPTOR.fields
    for name in (field.json_name,)
}


def profile_from_dict(profile: Mapping[str, Any]) -> profile_pb2.Profile:
    """The Profile message for a profile dict: null text becomes "", null
    lists and null items are dropped, an unreadable fetchTime is left unset,
    unknown keys are ignored."""
    message = profile_pb2.Profile()
    for name in (*TEXT_FIELDS, "version"):
        value = profile.get(name)
        if value:
            setattr(message, _PROTO_NAME[name], str(value))
    for name in LIST_FIELDS:
        getattr(message, _PROTO_NAME[name]).extend(
            str(item) for item in (profile.get(name) or []) if item is not None
        )
    fetched = profile.get("fetchTime")
    if isinstance(fetched, str) and fetched:
        try:
            message.fetch_time.FromJsonString(fetched)
        except ValueError:
            message.ClearField("fetch_time")
    return message


def profile_to_dict(message: profile_pb2.Profile) -> dict[str, Any]:
    """Every field present (empty lists and strings included), lowerCamelCase."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
