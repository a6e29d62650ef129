"""Change events as the REST stream's lines: JSON, one object per line, as the
gateway's transcoder writes a ChangeEvent (camelCase names, fields without
presence printed even when empty, enums by name).

    lines = EventLines()
    body = lines.join(events)   # b'{"eventId":"e-1",...}\n{"eventId":"e-2",...}\n'

Each event is encoded once, however many streams carry it: the newest
encodings are kept (by cursor and event id), so the streams that follow the
log's head share them. A heartbeat (no event id) is encoded every time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from profilesync.v1 import notifier_pb2

__all__ = ["CONTENT_TYPE", "EventLines", "event_line"]

CONTENT_TYPE = "application/json"
# Encodings kept: the shared reader's memory holds at most twice its 4,000
# entries, and streams at the head read from it.
KEEP_LINES = 10_000


# Characters JSON allows raw in a string that line readers split on (Python's
# str.splitlines, JavaScript): escaped, so one event stays one line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def event_line(event: notifier_pb2.ChangeEvent) -> bytes:
    """One event as a JSON line, as the gateway prints the ChangeEvent message."""
    text = json.dumps(_shown(event), ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS).encode() + b"\n"


# -- protobuf to JSON ----------------------------------------------------------
# What json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
# gives, several times faster: each message type's fields are looked at once and
# turned into a plan of converters. Field kinds the plan does not cover (floats,
# bytes, maps, 64-bit integers) leave the message to json_format itself, as do
# the JSON well-known types (Value, Struct, ...) except Timestamp.
_Converter = Callable[[Any], Any]
# (field name, JSON name, converter, prints only when set, repeated)
_Step = tuple[str, str, _Converter, bool, bool]
_PLANS: dict[str, list[_Step] | None] = {}
_PLAIN = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BOOL})
_INT32 = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_FIXED32,
    }
)


def _shown(message: Message) -> Any:
    descriptor = message.DESCRIPTOR
    plan = _PLANS.get(descriptor.full_name, ())
    if plan == ():
        plan = _PLANS[descriptor.full_name] = _plan(descriptor)
    if plan is None:
        return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    shown: dict[str, Any] = {}
    for name, json_name, convert, with_presence, repeated in plan:
        if with_presence:
            if message.HasField(name):
                shown[json_name] = convert(getattr(message, name))
        elif convert is _same:  # strings, booleans, integers: as they are
            shown[json_name] = list(getattr(message, name)) if repeated else getattr(message, name)
        elif repeated:
            shown[json_name] = [convert(item) for item in getattr(message, name)]
        else:
            shown[json_name] = convert(getattr(message, name))
    return shown


def _plan(descriptor: Any) -> list[_Step] | None:
    if descriptor.full_name.startswith("google.protobuf.") or descriptor.oneofs:
        return None
    plan: list[_Step] = []
    for field in descriptor.fields:
        convert = _converter(field)
        if convert is None:
            return None
        plan.append((field.name, field.json_name, convert, field.has_presence, field.is_repeated))
    return plan


def _converter(field: FieldDescriptor) -> _Converter | None:
    if field.type in _PLAIN or field.type in _INT32:
        return _same
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        names = {value.number: value.name for value in field.enum_type.values}
        return lambda number: names.get(number, number)
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            return None
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _timestamp
        return _shown
    return None


def _same(value: Any) -> Any:
    return value


def _timestamp(stamp: Timestamp) -> str:
    return stamp.ToJsonString()


class EventLines:
    """JSON lines of change events, each encoded once while it is recent."""

    def __init__(self, keep: int = KEEP_LINES) -> None:
        self._keep = keep
        self._lines: dict[tuple[str, str], bytes] = {}

    def join(self, events: Sequence[notifier_pb2.ChangeEvent]) -> bytes:
        return b"".join(self.line(event) for event in events)

    def line(self, event: notifier_pb2.ChangeEvent) -> bytes:
        if event.heartbeat or not event.event_id:
            return event_line(event)
        key = (event.cursor, event.event_id)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = event_line(event)
            if len(self._lines) > self._keep:
                # The oldest encoding first (dicts keep insertion order).
                del self._lines[next(iter(self._lines))]
        return line
