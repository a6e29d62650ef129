"""Turning two versions of a profile into a change event.

Fields are compared in their canonical form (services.common.profiles), so
whitespace, Unicode normalisation and list order never make a change; list
fields are compared as sets and report the items added and removed.

An event's id is derived from the user, the kind, the digests before and
after, and the baseline generation the before state was read from (the id of
the run that committed it). A rerun of a run that died before committing
compares against the same generation and so republishes the same ids, which
the notifier drops; a profile that flips back and forth (A→B→A→B) gets a new
id for each flip, because each flip starts from a newer generation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

from profilesync.v1 import notifier_pb2
from services.common.profile_messages import profile_from_dict
from services.common.profiles import LIST_FIELDS, PROFILE_FIELDS, canonical

__all__ = ["build_event", "event_id", "field_changes"]


def event_id(
    user_id: str,
    kind: notifier_pb2.ChangeKind,
    before_digest: str,
    after_digest: str,
    before_generation: str,
) -> str:
    """The same for a rerun of the same change against the same baseline
    generation (see the module doc); "" stands for no baseline yet."""
    material = (
        f"{user_id}\x00{kind}\x00{before_generation}\x00{before_digest}\x00{after_digest}"
    ).encode()
    return hashlib.sha256(material).hexdigest()[:32]


def _value(raw: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    if isinstance(raw, list):
        value.list_value.extend([str(item) for item in raw])
    elif raw is None:
        value.null_value = struct_pb2.NULL_VALUE
    else:
        value.string_value = str(raw)
    return value


def field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[notifier_pb2.FieldChange]:
    """One FieldChange per field whose canonical value differs."""
    old, new = canonical(before), canonical(after)
    result = []
    for name in PROFILE_FIELDS:
        if old[name] == new[name]:
            continue
        change = notifier_pb2.FieldChange(
            field=name, before=_value(before.get(name)), after=_value(after.get(name))
        )
        if name in LIST_FIELDS:
            change.added.extend(sorted(set(new[name]) - set(old[name])))
            change.removed.extend(sorted(set(old[name]) - set(new[name])))
        result.append(change)
    return result


def build_event(
    *,
    run_id: str,
    user_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    before_digest: str,
    after_digest: str,
    origin: notifier_pb2.ChangeOrigin,
    detect_time: dt.datetime,
    before_generation: str,
) -> notifier_pb2.ChangeEvent:
    """A CREATED (no before), DELETED (no after) or UPDATED event.

    `before_generation` is the baseline generation `before` comes from (""
    when there is none); it keeps ids of later flips of the same profile apart.
    """
    if before is None:
        kind = notifier_pb2.CREATED
        changes = field_changes({}, after or {})
    elif after is None:
        kind = notifier_pb2.DELETED
        changes = []
    else:
        kind = notifier_pb2.UPDATED
        changes = field_changes(before, after)
    event = notifier_pb2.ChangeEvent(
        event_id=event_id(user_id, kind, before_digest, after_digest, before_generation),
        run_id=run_id,
        user_id=user_id,
        kind=kind,
        changed_fields=[change.field for change in changes],
        field_changes=changes,
        origin=origin,
    )
    if before is not None:
        event.before.CopyFrom(profile_from_dict(before))
    if after is not None:
        event.after.CopyFrom(profile_from_dict(after))
    event.detect_time.FromDatetime(detect_time)
    return event
