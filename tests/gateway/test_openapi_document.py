"""The OpenAPI document: generated from the protos, committed fresh, and true to the wire."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import google.api
import grpc_tools
import pytest
from grpc_tools import protoc
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from services.gateway.openapi import DEFAULT_OUTPUT, build_document, main, render

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Every RPC with a google.api.http rule, as (verb, OpenAPI path).
EXPECTED_ROUTES = {
    "GetProfile": ("get", "/v1/profiles/{id}"),
    "BatchGetProfiles": ("post", "/v1/profiles:batchGet"),
    "SearchProfiles": ("get", "/v1/profiles:search"),
    "UpdateProfile": ("patch", "/v1/profiles/{id}"),
    "StartSync": ("post", "/v1/syncs"),
    "GetSync": ("get", "/v1/syncs/{runId}"),
    "ListSyncs": ("get", "/v1/syncs"),
    "ListChanges": ("get", "/v1/changes"),
    "StreamChanges": ("get", "/v1/changes:stream"),
}
# Operations served by another RPC than the one they document: the REST change
# stream is StreamChanges made into JSON lines by the notifier.
SERVED_BY = {"StreamChanges": "StreamChangeLines"}


@pytest.fixture(scope="module")
def document(descriptor_set: pathlib.Path) -> dict[str, Any]:
    return build_document(descriptor_set)


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        operation["operationId"]: (verb, path, operation)
        for path, verbs in document["paths"].items()
        for verb, operation in verbs.items()
    }


def validator(document: dict[str, Any], component: str) -> Draft202012Validator:
    """Validates instances against one component schema, resolving $refs in the document."""
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)
    return Draft202012Validator(
        {"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry
    )


def test_committed_document_is_the_generated_one(descriptor_set: pathlib.Path) -> None:
    committed = DEFAULT_OUTPUT.read_text() if DEFAULT_OUTPUT.is_file() else ""
    assert committed == render(build_document(descriptor_set)), (
        "docs/openapi.json is stale: run `make protos` and commit it"
    )


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)


def test_every_rest_rpc_is_an_operation_and_internal_ones_are_not(
    document: dict[str, Any],
) -> None:
    found = operations(document)
    for name, (verb, path) in EXPECTED_ROUTES.items():
        assert found[name][:2] == (verb, path), name
        assert found[name][2]["x-grpc-method"].endswith(f"/{SERVED_BY.get(name, name)}")
    assert "Publish" not in found
    assert "ListProfiles" not in found


def test_proto_comments_become_descriptions(document: dict[str, Any]) -> None:
    found = operations(document)
    get_profile = found["GetProfile"][2]
    assert get_profile["summary"].startswith("One profile, from the store the syncs keep")
    profile = document["components"]["schemas"]["Profile"]
    assert "Content digest" in profile["properties"]["version"]["description"]
    run_state = document["components"]["schemas"]["RunState"]
    assert "`PARTIAL`: Some profiles could not be read" in run_state["description"]


def test_proto3_json_mapping(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    # lowerCamelCase names; int64 as decimal strings; enums by name; Timestamp as date-time.
    assert "userPrincipalName" in schemas["Profile"]["properties"]
    assert schemas["SyncCounts"]["properties"]["users"]["type"] == "string"
    assert schemas["SyncCounts"]["properties"]["users"]["format"] == "int64"
    assert schemas["SyncRun"]["properties"]["shardIndex"]["type"] == "integer"
    assert schemas["RunState"]["enum"][:3] == ["RUN_STATE_UNSPECIFIED", "RUNNING", "SUCCEEDED"]
    assert schemas["Profile"]["properties"]["fetchTime"]["format"] == "date-time"
    # google.protobuf.Value is free JSON.
    assert "type" not in schemas["FieldChange"]["properties"]["before"]
    # Printed whether empty or not, so always present; message fields only when set.
    assert "skills" in schemas["Profile"]["required"]
    assert "fetchTime" not in schemas["Profile"]["required"]


def test_limits_become_json_schema_constraints(document: dict[str, Any]) -> None:
    found = operations(document)
    path_id, source = found["GetProfile"][2]["parameters"]
    assert path_id["in"] == "path" and path_id["name"] == "id"
    assert source["in"] == "query"
    assert source["schema"] == {"$ref": "#/components/schemas/ProfileSource"}
    assert "GRAPH" in document["components"]["schemas"]["ProfileSource"]["enum"]
    assert path_id["schema"]["maxLength"] == 256
    assert path_id["schema"]["pattern"].startswith("^(?:[0-9A-Za-z]")
    query = {p["name"]: p for p in found["ListChanges"][2]["parameters"]}
    assert set(query) >= {"afterCursor", "pageSize", "waitSeconds"}
    assert all(p["in"] == "query" for p in query.values())
    assert query["pageSize"]["schema"]["minimum"] == 0
    assert query["pageSize"]["schema"]["maximum"] == 1000
    # An optional pattern also lets the empty string through, as the validator does.
    assert query["afterCursor"]["schema"]["pattern"] == "^(?:[0-9]+-[0-9]+)?$"
    batch = found["BatchGetProfiles"][2]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["required"] == ["ids"]
    assert batch["properties"]["ids"]["maxItems"] == 100
    assert batch["properties"]["ids"]["minItems"] == 1
    assert batch["properties"]["ids"]["items"]["maxLength"] == 256


def test_struct_body_is_documented_as_the_fields_it_carries(document: dict[str, Any]) -> None:
    operation = operations(document)["UpdateProfile"][2]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {
        "aboutMe",
        "skills",
        "pastProjects",
        "schools",
        "interests",
        "expectedVersion",
    }
    assert body["additionalProperties"] is False
    assert body["properties"]["skills"] == {
        "type": "array",
        "items": {"type": "string", "maxLength": 255},
        "maxItems": 100,
        "description": body["properties"]["skills"]["description"],
    }
    assert [p["name"] for p in operation["parameters"]] == ["id"]


def test_errors_and_security(document: dict[str, Any]) -> None:
    assert document["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    status = document["components"]["schemas"]["Status"]
    assert set(status["properties"]) == {"code", "message", "details"}
    for _, _, operation in operations(document).values():
        if operation["tags"] == ["Gateway"]:
            assert operation["security"] == []
            continue
        responses = operation["responses"]
        for code in ("400", "401", "403", "404", "503", "default"):
            assert code in responses, (operation["operationId"], code)
    found = operations(document)
    assert "413" in found["BatchGetProfiles"][2]["responses"]
    assert found["UpdateProfile"][2]["x-access"]["delegatedUsers"] is True
    assert found["GetProfile"][2]["x-access"]["appRoles"] == ["Profiles.Read"]
    assert "`Profiles.Read`" in found["GetProfile"][2]["description"]


def test_schemas_accept_what_the_gateway_prints(document: dict[str, Any]) -> None:
    # As printed by the transcoder for tests/gateway's sample profile and event.
    profile = {
        "id": "u1",
        "userPrincipalName": "u1@contoso.example",
        "displayName": "Adele Vance",
        "mail": "",
        "jobTitle": "",
        "department": "",
        "aboutMe": "Retail manager",
        "skills": ["retail"],
        "pastProjects": [],
        "schools": [],
        "interests": [],
        "version": "0" * 64,
        "fetchTime": "2023-11-14T22:13:20Z",
    }
    validator(document, "Profile").validate(profile)
    heartbeat = {
        "eventId": "",
        "cursor": "1-0",
        "runId": "",
        "userId": "",
        "kind": "CHANGE_KIND_UNSPECIFIED",
        "changedFields": [],
        "origin": "CHANGE_ORIGIN_UNSPECIFIED",
        "fieldChanges": [],
        "heartbeat": True,
        "reason": "",
    }
    validator(document, "ChangeEvent").validate(heartbeat)
    counts = dict.fromkeys(document["components"]["schemas"]["SyncCounts"]["properties"], "0")
    validator(document, "SyncCounts").validate(counts)
    assert not validator(document, "SyncCounts").is_valid({**counts, "users": 3})
    validator(document, "Status").validate({"code": 3, "message": "id: is required"})


def test_cli_check_reports_a_stale_file(
    descriptor_set: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "openapi.json"
    output.write_text("{}\n")
    args = ["--descriptor-set", str(descriptor_set), "--output", str(output)]
    assert main([*args, "--check"]) == 1
    assert "stale; run make protos" in capsys.readouterr().err
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert json.loads(output.read_text())["info"]["title"] == "profile-sync REST API"


def test_cli_names_a_missing_descriptor_set(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--descriptor-set", str(tmp_path / "none.pb")]) == 2
    assert "run make protos" in capsys.readouterr().err


SAMPLE_PROTO = """
syntax = "proto3";
package sample.v1;
import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";
import "profilesync/v1/options.proto";

// Things, for the generator's own test.
service Things {
  // Lists things.
  rpc ListThings(ListThingsRequest) returns (Thing) {
    option (profilesync.v1.access) = {anonymous: true};
    option (google.api.http) = {
      get: "/v1/shelves/{shelf.id}/things"
      additional_bindings {post: "/v1/things:list" body: "*"}
      additional_bindings {custom: {kind: "SEARCH", path: "/v1/things"}}
    };
  }
}

message Shelf {
  string id = 1 [(profilesync.v1.limits) = {required: true, pattern: "[a-z]+"}];
  string label = 2;
}

message Filter {
  // Only things made after this time.
  google.protobuf.Timestamp after = 1;
  repeated string colors = 2 [(profilesync.v1.limits) = {max_items: 5}];
}

message ListThingsRequest {
  Shelf shelf = 1;
  Filter filter = 2;
  int64 min_weight = 3 [(profilesync.v1.limits) = {min_value: 0, max_value: 1000}];
  map<string, string> labels = 4;
}

message Thing {
  oneof size {
    int32 small = 1;
    int32 large = 2;
  }
  map<string, int64> counts = 3;
  optional string note = 4;
}
"""


def test_generator_binds_nested_repeated_and_extra_routes(tmp_path: pathlib.Path) -> None:
    (tmp_path / "sample.proto").write_text(SAMPLE_PROTO)
    descriptor_set = tmp_path / "sample.pb"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{tmp_path}",
            f"-I{ROOT / 'protos'}",
            f"-I{pathlib.Path(google.api.__path__[0]).parent.parent}",
            f"-I{pathlib.Path(grpc_tools.__file__).parent / '_proto'}",
            f"--descriptor_set_out={descriptor_set}",
            "--include_imports",
            "--include_source_info",
            "sample.proto",
        ]
    )
    assert status == 0
    document = build_document(descriptor_set, ["sample.v1.Things"])
    validate_openapi(document)
    listed = document["paths"]["/v1/shelves/{shelf.id}/things"]["get"]
    parameters = {p["name"]: p for p in listed["parameters"]}
    # The path binds shelf.id; the rest of shelf and the nested filter are query parameters.
    assert parameters["shelf.id"]["in"] == "path"
    assert parameters["shelf.id"]["schema"]["pattern"] == "^(?:[a-z]+)$"
    assert parameters["shelf.label"]["in"] == "query"
    assert parameters["filter.after"]["schema"]["format"] == "date-time"
    assert parameters["filter.colors"]["schema"]["maxItems"] == 5
    assert parameters["filter.colors"]["explode"] is True
    weight = parameters["minWeight"]["schema"]
    assert (weight["minimum"], weight["maximum"], weight["format"]) == (0, 1000, "int64")
    assert "labels" not in parameters  # a map cannot be spelled as a query parameter
    assert listed["security"] == []
    # A second binding with the whole request as its body; a method OpenAPI 3.1
    # cannot name (SEARCH) is left out.
    listed_by_post = document["paths"]["/v1/things:list"]["post"]
    assert listed_by_post["operationId"] == "ListThings2"
    body = listed_by_post["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"shelf", "filter", "minWeight", "labels"}
    assert body["properties"]["shelf"]["required"] == ["id"]
    assert "/v1/things" not in document["paths"]
    thing = document["components"]["schemas"]["Thing"]
    assert thing["properties"]["counts"]["additionalProperties"]["type"] == "string"
    assert thing["required"] == ["counts"]
    assert "At most one of `small`, `large`" in thing["description"]
