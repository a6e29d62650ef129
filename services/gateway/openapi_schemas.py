"""JSON Schema for protobuf messages, by the proto3 JSON mapping the gateway speaks.

    schemas = SchemaBuilder(catalog)
    schemas.response_ref("profilesync.v1.Profile")   # {"$ref": "#/components/schemas/Profile"}
    schemas.request_object(request_message, exclude={"id"})  # an inline request body
    schemas.components                                 # every schema referenced so far

The mapping is protobuf's: lowerCamelCase names, 64-bit integers as decimal
strings, enums by name, Timestamp and Duration as strings, Struct, ListValue
and Value as free JSON. Two sides differ:

- Responses are printed with every scalar and list field present (the
  transcoder's `always_print_primitive_fields`), so those fields are listed as
  required; message fields appear only when set.
- Requests carry the input limits declared with `(profilesync.v1.limits)`:
  `max_length`, `max_items`, `max_item_length`, the integer range and the
  pattern become maxLength, maxItems, items.maxLength, minimum/maximum and an
  anchored pattern, and `required` becomes required / minLength / minItems,
  as services/common/validation.py enforces them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2

from profilesync.v1 import options_pb2
from services.gateway.proto_catalog import ProtoCatalog, lower_camel

__all__ = ["Schema", "SchemaBuilder", "field_limits", "json_name"]

Schema = dict[str, Any]
Field = descriptor_pb2.FieldDescriptorProto

_SCHEMA_REF = "#/components/schemas/"

_INT32 = {Field.TYPE_INT32, Field.TYPE_SINT32, Field.TYPE_SFIXED32}
_UINT32 = {Field.TYPE_UINT32, Field.TYPE_FIXED32}
_INT64 = {Field.TYPE_INT64, Field.TYPE_SINT64, Field.TYPE_SFIXED64}
_UINT64 = {Field.TYPE_UINT64, Field.TYPE_FIXED64}
_INTEGERS = _INT32 | _UINT32 | _INT64 | _UINT64

_INT64_STRING: Schema = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
_UINT64_STRING: Schema = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}

# Well-known types have a JSON form of their own instead of an object of fields.
WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 date and time in UTC, e.g. `2024-05-01T12:00:00Z`.",
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
        "description": "Seconds with an `s` suffix, e.g. `1.5s`.",
    },
    "google.protobuf.Struct": {"type": "object", "description": "Any JSON object."},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "description": "A JSON array."},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamelCase field paths.",
    },
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.DoubleValue": {"type": "number"},
    "google.protobuf.FloatValue": {"type": "number"},
    "google.protobuf.Int64Value": _INT64_STRING,
    "google.protobuf.UInt64Value": _UINT64_STRING,
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int32", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}

# Well-known types whose JSON form is a single string, number or boolean, so a
# query parameter can carry them; Struct, Value, ListValue and Any cannot be.
SCALAR_WELL_KNOWN = frozenset(
    name
    for name, schema in WELL_KNOWN.items()
    if schema.get("type") in ("string", "number", "integer", "boolean")
)


def json_name(field: Field) -> str:
    return field.json_name or lower_camel(field.name)


def field_limits(field: Field) -> options_pb2.FieldLimits | None:
    if field.options.HasExtension(options_pb2.limits):  # type: ignore[arg-type]
        limits: options_pb2.FieldLimits = field.options.Extensions[options_pb2.limits]  # type: ignore[index]
        return limits
    return None


def _anchored(pattern: str, *, allow_empty: bool) -> str:
    # The validator uses Python's re.fullmatch and skips empty strings unless
    # the field is required; JSON Schema patterns are unanchored searches.
    return f"^(?:{pattern})?$" if allow_empty else f"^(?:{pattern})$"


def _is_map(catalog: ProtoCatalog, field: Field) -> bool:
    if field.type != Field.TYPE_MESSAGE:
        return False
    message = catalog.messages.get(field.type_name.lstrip("."))
    return message is not None and message.options.map_entry


def _is_repeated(field: Field) -> bool:
    return field.label == Field.LABEL_REPEATED


def _in_real_oneof(field: Field) -> bool:
    return field.HasField("oneof_index") and not field.proto3_optional


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


class SchemaBuilder:
    """Builds schemas for one document; components are added as they are referenced."""

    def __init__(self, catalog: ProtoCatalog) -> None:
        self.catalog = catalog
        self.components: dict[str, Schema] = {}
        self._names = self._component_names()

    # -- names --------------------------------------------------------------
    def _component_names(self) -> dict[str, str]:
        """Short names (`Profile`) where unique, full names where two packages clash."""
        full_names = [
            name
            for name in (*self.catalog.messages, *self.catalog.enums)
            if not name.startswith("google.protobuf.")
        ]
        counts: dict[str, int] = {}
        for name in full_names:
            short = name.rsplit(".", 1)[-1]
            counts[short] = counts.get(short, 0) + 1
        return {
            name: short if counts[short] == 1 else name
            for name in full_names
            for short in [name.rsplit(".", 1)[-1]]
        }

    def component_name(self, full_name: str) -> str:
        return self._names.get(full_name.lstrip("."), full_name.lstrip("."))

    # -- responses ----------------------------------------------------------
    def response_ref(self, full_name: str) -> Schema:
        """A reference to the response-side schema of a message or enum."""
        full_name = full_name.lstrip(".")
        if full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[full_name])
        name = self.component_name(full_name)
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages end here
            if full_name in self.catalog.enums:
                self.components[name] = self._enum_schema(full_name)
            else:
                self.components[name] = self._response_message(full_name)
        return {"$ref": _SCHEMA_REF + name}

    def _enum_schema(self, full_name: str) -> Schema:
        enum = self.catalog.enum(full_name)
        if full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        lines = []
        for value in enum.value:
            comment = " ".join(self.catalog.comment(f"{full_name}.{value.name}").split())
            lines.append(f"- `{value.name}`" + (f": {comment}" if comment else ""))
        return {
            "type": "string",
            "enum": [value.name for value in enum.value],
            "description": _join(self.catalog.comment(full_name), "\n".join(lines)),
        }

    def _response_message(self, full_name: str) -> Schema:
        message = self.catalog.message(full_name)
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in message.field:
            name = json_name(field)
            described = self._response_field(field)
            comment = self.catalog.comment(f"{full_name}.{field.name}")
            if comment:
                described = {**described, "description": comment}
            properties[name] = described
            # Printed even when empty: scalars, enums, lists and maps, unless
            # presence is tracked (optional, oneof members).
            singular_message = field.type == Field.TYPE_MESSAGE and not _is_repeated(field)
            if not singular_message and not _in_real_oneof(field) and not field.proto3_optional:
                required.append(name)
        schema: Schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        oneofs = self._oneof_notes(message)
        description = _join(self.catalog.comment(full_name), oneofs)
        if description:
            schema["description"] = description
        return schema

    def _oneof_notes(self, message: descriptor_pb2.DescriptorProto) -> str:
        notes = []
        for index, oneof in enumerate(message.oneof_decl):
            members = [
                f"`{json_name(f)}`"
                for f in message.field
                if f.HasField("oneof_index") and f.oneof_index == index and not f.proto3_optional
            ]
            if members:
                notes.append(f"At most one of {', '.join(members)} is set ({oneof.name}).")
        return "\n".join(notes)

    def _response_field(self, field: Field) -> Schema:
        if _is_map(self.catalog, field):
            entry = self.catalog.message(field.type_name)
            return {"type": "object", "additionalProperties": self._response_field(entry.field[1])}
        item = self._response_single(field)
        return {"type": "array", "items": item} if _is_repeated(field) else item

    def _response_single(self, field: Field) -> Schema:
        if field.type == Field.TYPE_MESSAGE or field.type == Field.TYPE_ENUM:
            return self.response_ref(field.type_name)
        return self._scalar(field, request=False)

    # -- requests -----------------------------------------------------------
    def request_object(
        self,
        message: descriptor_pb2.DescriptorProto,
        full_name: str,
        exclude: frozenset[str] = frozenset(),
        *,
        depth: int = 0,
    ) -> Schema:
        """The inline request-side schema of `message` without the fields in `exclude`."""
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in message.field:
            if field.name in exclude:
                continue
            name = json_name(field)
            properties[name] = self.request_field(field, full_name, depth=depth)
            limits = field_limits(field)
            if limits is not None and limits.required:
                required.append(name)
        schema: Schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        oneofs = self._oneof_notes(message)
        if oneofs:
            schema["description"] = oneofs
        return schema

    def request_field(self, field: Field, owner: str, *, depth: int = 0) -> Schema:
        """One request field, its limits and its comment."""
        limits = field_limits(field)
        schema = self._request_shape(field, limits, depth)
        notes = [self.catalog.comment(f"{owner}.{field.name}")]
        if limits is not None and limits.pattern_description:
            notes.append(f"Must be {limits.pattern_description}.")
        description = _join(*notes)
        if description:
            schema["description"] = description
        return schema

    def _request_shape(
        self, field: Field, limits: options_pb2.FieldLimits | None, depth: int
    ) -> Schema:
        if _is_map(self.catalog, field):
            entry = self.catalog.message(field.type_name)
            value = self._request_single(entry.field[1], None, depth)
            return {"type": "object", "additionalProperties": value}
        if _is_repeated(field):
            item = self._request_single(field, limits, depth, item=True)
            schema: Schema = {"type": "array", "items": item}
            self._list_limits(schema, limits)
            return schema
        if field.type_name.lstrip(".") == "google.protobuf.ListValue" and limits is not None:
            # A ListValue with item limits is a list of strings: the validator
            # refuses any other item.
            strings: Schema = {"type": "string"}
            if limits.max_item_length:
                strings["maxLength"] = limits.max_item_length
            values: Schema = {"type": "array", "items": strings}
            self._list_limits(values, limits)
            return values
        return self._request_single(field, limits, depth)

    @staticmethod
    def _list_limits(schema: Schema, limits: options_pb2.FieldLimits | None) -> None:
        if limits is None:
            return
        if limits.max_items:
            schema["maxItems"] = limits.max_items
        if limits.required:
            schema["minItems"] = 1

    def _request_single(
        self,
        field: Field,
        limits: options_pb2.FieldLimits | None,
        depth: int,
        *,
        item: bool = False,
    ) -> Schema:
        if field.type == Field.TYPE_ENUM:
            return self.response_ref(field.type_name)
        if field.type == Field.TYPE_MESSAGE:
            type_name = field.type_name.lstrip(".")
            if type_name in WELL_KNOWN:
                return dict(WELL_KNOWN[type_name])
            if depth >= 8:
                # Recursive request messages: deeper levels use the response
                # form, which has the same fields without the input limits.
                return self.response_ref(type_name)
            return self.request_object(self.catalog.message(type_name), type_name, depth=depth + 1)
        schema = self._scalar(field, request=True)
        if limits is None:
            return schema
        if field.type == Field.TYPE_STRING:
            max_length = limits.max_item_length if item else limits.max_length
            if max_length:
                schema["maxLength"] = max_length
            if limits.required and not item:
                schema["minLength"] = 1
            if limits.pattern:
                required = limits.required and not item
                schema["pattern"] = _anchored(limits.pattern, allow_empty=not required)
        elif field.type in _INTEGERS and limits.min_value < limits.max_value:
            schema["minimum"] = limits.min_value
            schema["maximum"] = limits.max_value
        return schema

    # -- scalars ------------------------------------------------------------
    @staticmethod
    def _scalar(field: Field, *, request: bool) -> Schema:
        kind = field.type
        if kind in _INT32:
            return {"type": "integer", "format": "int32"}
        if kind in _UINT32:
            return {"type": "integer", "format": "int32", "minimum": 0}
        if kind in _INT64 or kind in _UINT64:
            printed = dict(_INT64_STRING if kind in _INT64 else _UINT64_STRING)
            if request:
                # Parsed from a number or a decimal string alike.
                printed["type"] = ["string", "integer"]
            return printed
        if kind in (Field.TYPE_DOUBLE, Field.TYPE_FLOAT):
            return {"type": "number"}
        if kind == Field.TYPE_BOOL:
            return {"type": "boolean"}
        if kind == Field.TYPE_BYTES:
            return {"type": "string", "format": "byte"}
        return {"type": "string"}
