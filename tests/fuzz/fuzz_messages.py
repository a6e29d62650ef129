"""Hypothesis strategies for any protobuf request, built from its descriptor.

Each field draws either a value that keeps the limits declared on it with
`(profilesync.v1.limits)` or a hostile one (past the limits, out of range, an
unknown enum number, injection strings), so one strategy yields valid and
invalid requests alike; services.common.validation tells which a drawn one is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fuzz_inputs import HOSTILE_STRINGS, hostile_text
from google.protobuf import message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from profilesync.v1 import options_pb2

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
# Nested messages deeper than this are left unset (ChangeEvent -> Profile -> ...).
MAX_DEPTH = 3
# Free-form JSON (Struct, Value, ListValue) stays well inside the decoder's depth limit
# here; tests/fuzz/test_fuzz_grpc.py probes the limit itself.
JSON_LEAVES = 10


def limits_of(field: FieldDescriptor) -> options_pb2.FieldLimits | None:
    options = field.GetOptions()
    if options.HasExtension(options_pb2.limits):
        limits: options_pb2.FieldLimits = options.Extensions[options_pb2.limits]
        return limits
    return None


def _string(
    limits: options_pb2.FieldLimits | None, *, item: bool = False
) -> st.SearchStrategy[str]:
    max_length = 0
    if limits is not None:
        max_length = limits.max_item_length if item else limits.max_length
    valid: st.SearchStrategy[str]
    if limits is not None and limits.pattern:
        valid = st.from_regex(limits.pattern, fullmatch=True)
        if max_length:
            valid = valid.filter(lambda s: len(s) <= max_length)
    else:
        valid = st.text(max_size=max_length or 64)
    hostile = [hostile_text]
    if max_length:
        hostile.append(st.just("x" * (max_length + 1)))
    return st.one_of(valid, valid, *hostile)


def _integer(
    field: FieldDescriptor, limits: options_pb2.FieldLimits | None
) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field.type]
    edges = st.sampled_from(sorted({v for v in (low, high, -1, 0, 1) if low <= v <= high}))
    if limits is not None and limits.min_value < limits.max_value:
        valid = st.integers(max(low, limits.min_value), min(high, limits.max_value))
        outside = [v for v in (limits.min_value - 1, limits.max_value + 1) if low <= v <= high]
        return st.one_of(valid, valid, st.sampled_from(outside) if outside else valid, edges)
    return st.one_of(st.integers(0, 100), edges)


def _json() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.floats(allow_nan=False) | hostile_text
    return st.recursive(
        leaves,
        lambda kids: (
            st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
        ),
        max_leaves=JSON_LEAVES,
    )


def _list_value(limits: options_pb2.FieldLimits | None) -> st.SearchStrategy[struct_pb2.ListValue]:
    def build(items: list[Any]) -> struct_pb2.ListValue:
        value = struct_pb2.ListValue()
        value.extend(items)
        return value

    strings = st.lists(_string(limits, item=True), max_size=5)
    too_many = st.builds(
        lambda s: [s] * ((limits.max_items if limits else 100) + 1), st.text(max_size=3)
    )
    anything = st.lists(_json(), max_size=4)
    return st.one_of(strings, strings, too_many, anything).map(build)


def _struct() -> st.SearchStrategy[struct_pb2.Struct]:
    def build(fields: dict[str, Any]) -> struct_pb2.Struct:
        value = struct_pb2.Struct()
        value.update(fields)
        return value

    names = st.sampled_from(
        ["aboutMe", "skills", "pastProjects", "schools", "interests", "expectedVersion",
         "displayName", "id", *HOSTILE_STRINGS[:8]]
    )  # fmt: skip
    return st.dictionaries(names | st.text(max_size=10), _json(), max_size=4).map(build)


def _timestamp() -> st.SearchStrategy[timestamp_pb2.Timestamp]:
    return st.builds(
        timestamp_pb2.Timestamp,
        seconds=st.integers(-62135596800 - 10, 253402300799 + 10) | st.sampled_from(INT64),
        nanos=st.integers(-1, 10**9) | st.just(0),
    )


def _single(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    limits = limits_of(field)
    if field.type == FieldDescriptor.TYPE_STRING:
        return _string(limits, item=field.is_repeated)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(
            allow_nan=True,
            allow_infinity=True,
            width=32 if field.type == FieldDescriptor.TYPE_FLOAT else 64,
        )
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        return st.sampled_from(known) | st.sampled_from([99, -1, 2**31 - 1])
    if field.type in _INT_RANGES:
        return _integer(field, limits)
    name = field.message_type.full_name
    if name == "google.protobuf.ListValue":
        return _list_value(limits)
    if name == "google.protobuf.Struct":
        return _struct()
    if name == "google.protobuf.Value":

        def build(value: Any) -> struct_pb2.Value:
            wrapped = struct_pb2.ListValue()
            wrapped.append(value)
            return wrapped.values[0]

        return _json().map(build)
    if name == "google.protobuf.Timestamp":
        return _timestamp()
    if depth >= MAX_DEPTH:
        return None
    return messages(field.message_type, depth + 1)


@cache
def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Requests of this type: each field absent, valid or hostile."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        single = _single(field, depth)
        if single is None:
            continue
        if not field.is_repeated:
            fields[field.name] = single
            continue
        limits = limits_of(field)
        options = [st.lists(single, max_size=4)]
        if limits is not None and limits.max_items:
            # One past the limit, as copies: drawing a thousand messages is slow.
            options.append(st.builds(lambda item, n=limits.max_items + 1: [item] * n, single))
        fields[field.name] = st.one_of(*options)
    cls = message_class(descriptor)

    def build(values: dict[str, Any]) -> Message:
        message = cls()
        for name, value in values.items():
            if isinstance(value, Message):
                getattr(message, name).CopyFrom(value)
            elif isinstance(value, list):
                getattr(message, name).extend(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=fields).map(build)
