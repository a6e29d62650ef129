"""Checks request messages against the limits declared in the protos.

Limits live on the fields as `(profilesync.v1.limits)` options (see
protos/profilesync/v1/options.proto); this module is the one place that
enforces them, called for every request by the gRPC interceptor.
"""

from __future__ import annotations

import re
from functools import cache

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from profilesync.v1 import options_pb2
from services.common.errors import InvalidArgument

__all__ = ["validate"]

_INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
    }
)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@cache
def _limited_fields(
    descriptor: Descriptor,
) -> tuple[tuple[FieldDescriptor, options_pb2.FieldLimits], ...]:
    found: list[tuple[FieldDescriptor, options_pb2.FieldLimits]] = []
    for field in descriptor.fields:
        options = field.GetOptions()
        if options.HasExtension(options_pb2.limits):  # type: ignore[arg-type]
            found.append((field, options.Extensions[options_pb2.limits]))  # type: ignore[index]
    return tuple(found)


def _check_string(path: str, value: str, limits: options_pb2.FieldLimits, *, item: bool) -> None:
    max_length = limits.max_item_length if item else limits.max_length
    if max_length and len(value) > max_length:
        raise InvalidArgument(f"{path}: must be at most {max_length} characters, got {len(value)}")
    if value and limits.pattern and not _compiled(limits.pattern).fullmatch(value):
        wanted = limits.pattern_description or f"a value matching {limits.pattern}"
        raise InvalidArgument(f"{path}: must be {wanted}")


def _check_list(path: str, items: list[object], limits: options_pb2.FieldLimits) -> None:
    if limits.max_items and len(items) > limits.max_items:
        raise InvalidArgument(f"{path}: at most {limits.max_items} items, got {len(items)}")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidArgument(f"{path}[{index}]: must be a string")
        _check_string(f"{path}[{index}]", item, limits, item=True)


def _json_name(field: FieldDescriptor) -> str:
    return field.json_name or field.name


def validate(message: Message, prefix: str = "") -> None:
    """Raises InvalidArgument naming the first field that breaks its limits.

    Field paths use the JSON (lowerCamelCase) names the REST API shows.
    Nested messages are checked too.
    """
    for field, limits in _limited_fields(message.DESCRIPTOR):
        path = f"{prefix}{_json_name(field)}"
        value = getattr(message, field.name)
        if field.is_repeated:
            items = list(value)
            if limits.required and not items:
                raise InvalidArgument(f"{path}: is required")
            if field.type == FieldDescriptor.TYPE_STRING:
                _check_list(path, items, limits)
            elif limits.max_items and len(items) > limits.max_items:
                raise InvalidArgument(f"{path}: at most {limits.max_items} items, got {len(items)}")
        elif field.type == FieldDescriptor.TYPE_STRING:
            if limits.required and not value:
                raise InvalidArgument(f"{path}: is required")
            _check_string(path, value, limits, item=False)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            present = message.HasField(field.name)
            if limits.required and not present:
                raise InvalidArgument(f"{path}: is required")
            if present and isinstance(value, struct_pb2.ListValue):
                _check_list(path, [_plain(v) for v in value.values], limits)
        elif field.cpp_type in _INTEGER_TYPES and not _in_range(value, limits):
            low, high = limits.min_value, limits.max_value
            raise InvalidArgument(f"{path}: must be between {low} and {high}, got {value}")
    # Recurse into nested messages (singular and repeated) so their limits hold too.
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE or _is_map(field):
            continue
        name = f"{prefix}{_json_name(field)}"
        if field.is_repeated:
            for index, item in enumerate(value):
                validate(item, f"{name}[{index}].")
        else:
            validate(value, f"{name}.")


def _plain(value: struct_pb2.Value) -> object:
    kind = value.WhichOneof("kind")
    return getattr(value, kind) if kind else None


def _in_range(value: int, limits: options_pb2.FieldLimits) -> bool:
    """Integer limits apply only when a range is declared (min < max)."""
    if limits.min_value >= limits.max_value:
        return True
    return limits.min_value <= value <= limits.max_value


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry
