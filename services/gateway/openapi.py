"""The OpenAPI 3.1 document of the REST API, generated from the protos.

    python -m services.gateway.openapi             # writes docs/openapi.json
    python -m services.gateway.openapi --check     # exit 1 if docs/openapi.json is stale

Reads the descriptor set the gateway runs with (`build/profilesync.pb`, made
by `make protos` with source info, so proto comments become descriptions).
Every RPC with a `google.api.http` rule becomes an operation, its fields
bound as the gRPC-JSON transcoder binds them:

- `{field}` in the path template is a path parameter;
- `body: "*"` puts every other field in the JSON body;
- `body: "<field>"` makes that field the body; a `google.protobuf.Struct`
  body is read by the service into the request's other fields (refusing
  unknown names), so it is documented as an object of those fields;
- without a body, every other field is a query parameter (nested fields as
  `parent.child`), by its lowerCamelCase name.

Errors are the JSON google.rpc.Status the gateway answers with
(`{"code", "message", "details"}`); every operation needs a bearer token
unless its `(profilesync.v1.access)` policy says `anonymous`.
`make protos` regenerates docs/openapi.json; a test fails when the committed
file differs from what this module makes.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]  # no stubs
from google.protobuf import descriptor_pb2

from profilesync.v1 import options_pb2
from services.gateway.envoy_config import HEALTH_PATH, OPENAPI_PATH
from services.gateway.openapi_schemas import (
    SCALAR_WELL_KNOWN,
    WELL_KNOWN,
    Schema,
    SchemaBuilder,
    json_name,
)
from services.gateway.proto_catalog import ProtoCatalog, ServiceEntry
from services.gateway.settings import BACKEND_SERVICES

__all__ = ["DEFAULT_OUTPUT", "build_document", "main", "render"]

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DEFAULT_DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
DEFAULT_OUTPUT = ROOT / "docs" / "openapi.json"

API_TITLE = "profile-sync REST API"
API_DESCRIPTION = (
    "Reads, searches and edits SharePoint Online user profiles, starts and inspects sync "
    "runs, and reads the change log, through the REST gateway (Envoy's gRPC-JSON "
    "transcoder). JSON field names are lowerCamelCase; 64-bit integers are decimal "
    "strings; enums are their names; times are RFC 3339 strings.\n\n"
    "Every call carries `Authorization: Bearer <JWT>`, an access token from the tenant's "
    "Entra ID (or the Graph emulator on the embedded default) for the profile-sync "
    'application. Errors are `{"code", "message", "details"}`: `code` is the gRPC '
    "status code and `message` names the field or the reason.\n\n"
    "Generated from protos/profilesync/v1 by `python -m services.gateway.openapi`; "
    "do not edit by hand."
)
SERVERS = [{"url": "http://127.0.0.1:8080", "description": "`make dev` on this machine"}]

STATUS_SCHEMA: Schema = {
    "type": "object",
    "description": "An error (google.rpc.Status as JSON).",
    "properties": {
        "code": {
            "type": "integer",
            "format": "int32",
            "description": "gRPC status code, e.g. 3 INVALID_ARGUMENT, 5 NOT_FOUND.",
        },
        "message": {
            "type": "string",
            "description": "What went wrong, naming the field or the reason.",
        },
        "details": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/google.protobuf.Any"},
        },
    },
    "required": ["code", "message"],
}

# Errors every operation may answer (others, such as 409, under `default`
# and in the operation's description).
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "Malformed input: a field breaks its limits or cannot be parsed."),
    "401": ("Unauthenticated", "No bearer token, or one that is refused (the reason is given)."),
    "403": ("PermissionDenied", "The token is valid but does not allow this operation."),
    "404": ("NotFound", "No such resource."),
    "429": ("RateLimited", "Rate limited; retry later."),
    "503": ("Unavailable", "A backend (Graph, Redis or a service) is unavailable; retry."),
}
BODY_TOO_LARGE = ("PayloadTooLarge", "The request body is larger than the gateway accepts.")

_OPENAPI_VERBS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_TEMPLATE_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")
_STREAM_NOTE = (
    "A server stream: the response body is newline-delimited JSON, one object of this "
    "schema per line, for as long as the client reads."
)


@dataclass(frozen=True)
class Binding:
    """One HTTP rule of one method."""

    verb: str
    template: str
    body: str
    response_body: str


def _bindings(rule: http_pb2.HttpRule) -> list[Binding]:
    found = []
    for item in (rule, *rule.additional_bindings):
        kind = item.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            verb, template = item.custom.kind.lower(), item.custom.path
            if verb not in _OPENAPI_VERBS:
                continue  # OpenAPI 3.1 has no place for other methods
        else:
            verb, template = kind, getattr(item, kind)
        found.append(Binding(verb, template, item.body, item.response_body))
    return found


def _access(method: descriptor_pb2.MethodDescriptorProto) -> options_pb2.AccessPolicy:
    if method.options.HasExtension(options_pb2.access):  # type: ignore[arg-type]
        policy: options_pb2.AccessPolicy = method.options.Extensions[options_pb2.access]  # type: ignore[index]
        return policy
    # As services/common/auth.py: an RPC without a policy is internal.
    return options_pb2.AccessPolicy(app_roles=["Profiles.Sync"])


def _rest_stream_of(
    service: ServiceEntry, method: descriptor_pb2.MethodDescriptorProto
) -> descriptor_pb2.MethodDescriptorProto:
    """The RPC named by the method's `rest_stream_of` option, else the method itself."""
    if not method.options.HasExtension(options_pb2.rest_stream_of):  # type: ignore[arg-type]
        return method
    name: str = method.options.Extensions[options_pb2.rest_stream_of]  # type: ignore[index]
    for other in service.descriptor.method:
        if other.name == name and other.server_streaming:
            return other
    raise ValueError(f"{service.full_name}.{method.name}: rest_stream_of names no stream {name!r}")


def _access_text(policy: options_pb2.AccessPolicy) -> str:
    if policy.anonymous:
        return "**Access:** no token needed."
    kinds = []
    if policy.app_roles:
        roles = ", ".join(f"`{role}`" for role in policy.app_roles)
        kinds.append(f"an application token with one of the app roles {roles}")
    if policy.delegated_users:
        scopes = " or ".join(f"`{scope}`" for scope in policy.delegated_scopes)
        kinds.append(
            f"a delegated user token with the scope {scopes} (the service acts as that user)"
        )
    return "**Access:** " + " or ".join(kinds) + "."


def _summary(comment: str, method_name: str) -> str:
    if comment:
        first = " ".join(comment.split("\n\n", 1)[0].split())
        sentence = first.split(". ", 1)[0].rstrip(".")
        if len(sentence) <= 120:
            return sentence
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", method_name).lower()
    return words[:1].upper() + words[1:]


class _DocumentBuilder:
    def __init__(self, catalog: ProtoCatalog, services: Sequence[str]) -> None:
        self.catalog = catalog
        self.services = services
        self.schemas = SchemaBuilder(catalog)
        self.paths: dict[str, dict[str, Any]] = {}
        self.operation_ids: set[str] = set()

    # -- parameters ---------------------------------------------------------
    def _field_path(self, message_name: str, path: str) -> tuple[str, Schema]:
        """JSON name and schema of a (possibly nested) field path such as `shelf.id`."""
        message = self.catalog.message(message_name)
        owner = message_name
        json_parts = []
        schema: Schema = {}
        parts = path.split(".")
        for index, part in enumerate(parts):
            field = next((f for f in message.field if f.name == part), None)
            if field is None:
                raise ValueError(f"{message_name} has no field {path!r} (an HTTP rule names it)")
            json_parts.append(json_name(field))
            if index == len(parts) - 1:
                schema = self.schemas.request_field(field, owner)
            else:
                owner = field.type_name.lstrip(".")
                message = self.catalog.message(owner)
        return ".".join(json_parts), schema

    def _query_parameters(
        self,
        message_name: str,
        bound: frozenset[str],
        proto_prefix: str = "",
        json_prefix: str = "",
        depth: int = 0,
    ) -> list[dict[str, Any]]:
        """Query parameters for the fields not in `bound` (proto field paths)."""
        message = self.catalog.message(message_name)
        parameters: list[dict[str, Any]] = []
        for field in message.field:
            proto_path = proto_prefix + field.name
            if proto_path in bound:
                continue
            name = json_prefix + json_name(field)
            type_name = field.type_name.lstrip(".")
            if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE:
                if type_name in SCALAR_WELL_KNOWN:
                    pass  # a string in the query, like a scalar
                elif type_name in WELL_KNOWN or depth >= 3:
                    continue  # free JSON cannot be spelled as a query parameter
                else:
                    nested = self.catalog.message(type_name)
                    if nested.options.map_entry:
                        continue
                    parameters += self._query_parameters(
                        type_name, bound, f"{proto_path}.", f"{name}.", depth + 1
                    )
                    continue
            schema = self.schemas.request_field(field, message_name)
            parameter: dict[str, Any] = {"name": name, "in": "query"}
            description = schema.pop("description", "")
            if description:
                parameter["description"] = description
            required = schema.get("minLength") or schema.get("minItems")
            if required:
                parameter["required"] = True
            if schema.get("type") == "array":
                parameter["style"] = "form"
                parameter["explode"] = True
            parameter["schema"] = schema
            parameters.append(parameter)
        return parameters

    # -- bodies -------------------------------------------------------------
    def _request_body(
        self, message_name: str, binding: Binding, path_fields: frozenset[str]
    ) -> tuple[Schema | None, frozenset[str]]:
        """The body schema and the fields it carries (every other one is a query parameter)."""
        message = self.catalog.message(message_name)
        everything = frozenset(f.name for f in message.field)
        if binding.body == "*":
            # A field bound whole by the path is left out; one whose nested field
            # the path binds still carries its other fields in the body.
            schema = self.schemas.request_object(message, message_name, path_fields)
            return schema, everything
        field = next((f for f in message.field if f.name == binding.body), None)
        if field is None:
            raise ValueError(f"{message_name} has no field {binding.body!r} (its HTTP rule's body)")
        if field.type_name.lstrip(".") == "google.protobuf.Struct":
            # The service reads this object into the request's other fields.
            siblings = path_fields | {field.name}
            schema = self.schemas.request_object(message, message_name, siblings)
            schema["additionalProperties"] = False
            comment = self.catalog.comment(f"{message_name}.{field.name}")
            if comment:
                schema["description"] = comment
            return schema, everything
        return self.schemas.request_field(field, message_name), frozenset({field.name})

    # -- responses ----------------------------------------------------------
    def _responses(
        self,
        method: descriptor_pb2.MethodDescriptorProto,
        binding: Binding,
        has_body: bool,
        anonymous: bool,
    ) -> dict[str, Any]:
        output = method.output_type.lstrip(".")
        if binding.response_body:
            fields = self.catalog.message(output).field
            field = next(f for f in fields if f.name == binding.response_body)
            schema = self.schemas.response_ref(field.type_name or output)
        else:
            schema = self.schemas.response_ref(output)
        description = self.catalog.comment(output) or "OK"
        if method.server_streaming:
            description = _STREAM_NOTE
        ok: dict[str, Any] = {
            "description": " ".join(description.split("\n\n", 1)[0].split()),
            "content": {"application/json": {"schema": schema}},
        }
        if method.server_streaming:
            ok["x-stream"] = "newline-delimited-json"
        responses: dict[str, Any] = {"200": ok}
        for status, (name, _) in ERROR_RESPONSES.items():
            if anonymous and status in ("401", "403"):
                continue
            responses[status] = {"$ref": f"#/components/responses/{name}"}
        if has_body:
            responses["413"] = {"$ref": f"#/components/responses/{BODY_TOO_LARGE[0]}"}
        responses["default"] = {"$ref": "#/components/responses/Error"}
        return dict(sorted(responses.items(), key=lambda item: (item[0] == "default", item[0])))

    # -- operations ---------------------------------------------------------
    def add_method(
        self, service: ServiceEntry, method: descriptor_pb2.MethodDescriptorProto
    ) -> None:
        if not method.options.HasExtension(annotations_pb2.http):
            return
        rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
        input_name = method.input_type.lstrip(".")
        policy = _access(method)
        # A stream of JSON lines made by the service (google.api.HttpBody) is
        # documented as the RPC whose messages the lines are.
        shown = _rest_stream_of(service, method)
        comment = self.catalog.comment(f"{service.full_name}.{shown.name}")
        for index, binding in enumerate(_bindings(rule)):
            parameters: list[dict[str, Any]] = []
            path_fields: set[str] = set()

            def to_openapi(
                match: re.Match[str],
                parameters: list[dict[str, Any]] = parameters,
                path_fields: set[str] = path_fields,
            ) -> str:
                name, schema = self._field_path(input_name, match.group(1))
                path_fields.add(match.group(1))
                parameter: dict[str, Any] = {"name": name, "in": "path", "required": True}
                description = schema.pop("description", "")
                if description:
                    parameter["description"] = description
                parameter["schema"] = schema
                parameters.append(parameter)
                return "{" + name + "}"

            path = _TEMPLATE_VARIABLE.sub(to_openapi, binding.template)
            bound = frozenset(path_fields)
            body: Schema | None = None
            if binding.body:
                body, carried = self._request_body(input_name, binding, bound)
                bound |= carried
            parameters += self._query_parameters(input_name, bound)
            operation_id = shown.name if index == 0 else f"{shown.name}{index + 1}"
            if operation_id in self.operation_ids:
                operation_id = f"{service.full_name.rsplit('.', 1)[-1]}_{operation_id}"
            self.operation_ids.add(operation_id)
            operation: dict[str, Any] = {
                "operationId": operation_id,
                "tags": [service.full_name.rsplit(".", 1)[-1]],
                "summary": _summary(comment, shown.name),
                "description": "\n\n".join(p for p in (comment, _access_text(policy)) if p),
            }
            if parameters:
                operation["parameters"] = parameters
            if body is not None:
                required = bool(body.get("required")) or binding.body != "*"
                operation["requestBody"] = {
                    "required": required,
                    "content": {"application/json": {"schema": body}},
                }
            operation["responses"] = self._responses(
                shown, binding, body is not None, policy.anonymous
            )
            if policy.anonymous:
                operation["security"] = []
            operation["x-grpc-method"] = f"/{service.full_name}/{method.name}"
            operation["x-access"] = {
                "appRoles": list(policy.app_roles),
                "delegatedUsers": policy.delegated_users,
                "delegatedScopes": list(policy.delegated_scopes),
                "anonymous": policy.anonymous,
            }
            self.paths.setdefault(path, {})[binding.verb] = operation

    def gateway_routes(self) -> None:
        """The gateway's own routes, answered by Envoy without a token."""
        self.paths[OPENAPI_PATH] = {
            "get": {
                "operationId": "GetOpenApiDocument",
                "tags": ["Gateway"],
                "summary": "This document",
                "description": "**Access:** no token needed.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document of the REST API.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        }
        self.paths[HEALTH_PATH] = {
            "get": {
                "operationId": "GatewayHealth",
                "tags": ["Gateway"],
                "summary": "Liveness of the gateway itself",
                "description": "Answers `ok` while Envoy runs, whatever the backends' state. "
                "**Access:** no token needed.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The gateway is up.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        }

    def document(self) -> dict[str, Any]:
        tags = []
        for service in self.catalog.iter_services():
            if service.full_name not in self.services:
                continue
            for method in service.descriptor.method:
                self.add_method(service, method)
            tags.append(
                {
                    "name": service.full_name.rsplit(".", 1)[-1],
                    "description": " ".join(self.catalog.comment(service.full_name).split()),
                }
            )
        self.gateway_routes()
        tags.append({"name": "Gateway", "description": "Routes the gateway answers itself."})
        components_schemas = dict(sorted(self.schemas.components.items()))
        components_schemas["Status"] = STATUS_SCHEMA
        components_schemas["google.protobuf.Any"] = WELL_KNOWN["google.protobuf.Any"]
        status_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}
        responses = {
            name: {"description": text, "content": status_content}
            for name, text in (*ERROR_RESPONSES.values(), BODY_TOO_LARGE)
        }
        responses["Error"] = {
            "description": "Any other error, e.g. 409 for a conflict the operation describes.",
            "content": status_content,
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": API_TITLE, "version": "v1", "description": API_DESCRIPTION},
            "servers": SERVERS,
            "security": [{"bearerAuth": []}],
            "tags": tags,
            "paths": dict(sorted(self.paths.items())),
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "An Entra ID access token for the profile-sync "
                        "application (audience `api://<client id>` or the client id): an "
                        "application token with app roles, or a delegated user token.",
                    }
                },
                "schemas": components_schemas,
                "responses": responses,
            },
        }


def build_document(
    descriptor_set: pathlib.Path, services: Sequence[str] = tuple(BACKEND_SERVICES)
) -> dict[str, Any]:
    """The OpenAPI document for the REST routes of `services` in `descriptor_set`."""
    catalog = ProtoCatalog.load(descriptor_set)
    known = {service.full_name for service in catalog.iter_services()}
    missing = [name for name in services if name not in known]
    if missing:
        raise ValueError(f"{descriptor_set} has no service {', '.join(missing)}")
    return _DocumentBuilder(catalog, services).document()


def render(document: dict[str, Any]) -> str:
    """The file's text: stable key order, two-space indents, ASCII only, final newline."""
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.gateway.openapi",
        description="Writes the OpenAPI document of the REST API, generated from the protos.",
    )
    parser.add_argument("--descriptor-set", type=pathlib.Path, default=DEFAULT_DESCRIPTOR_SET)
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the output file differs from the generated document",
    )
    args = parser.parse_args(argv)
    if not args.descriptor_set.is_file():
        message = f"no descriptor set at {args.descriptor_set} (run make protos)"
        print(f"openapi: {message}", file=sys.stderr)
        return 2
    try:
        text = render(build_document(args.descriptor_set))
    except (ValueError, KeyError) as error:
        print(f"openapi: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != text:
            print(f"openapi: {args.output} is stale; run make protos", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if not args.output.is_file() or args.output.read_text() != text:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
