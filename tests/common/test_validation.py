"""Input limits declared in the protos are enforced, with messages naming the field."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from profilesync.v1 import differ_pb2, extender_pb2, notifier_pb2
from services.common.errors import InvalidArgument
from services.common.validation import validate


def _fails(message: object, *fragments: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(message)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_valid_request_passes() -> None:
    validate(extender_pb2.GetProfileRequest(id="adele.vance@contoso.onmicrosoft.com"))
    validate(extender_pb2.GetProfileRequest(id="6e7b768e-07e2-4810-8459-485f84f8f204"))


def test_required_field_is_named() -> None:
    _fails(extender_pb2.GetProfileRequest(), "id: is required")


def test_pattern_uses_its_description() -> None:
    _fails(extender_pb2.GetProfileRequest(id="a b"), "id: must be an object id")
    _fails(extender_pb2.GetProfileRequest(id="x/../../etc"), "id:")


def test_string_length() -> None:
    _fails(extender_pb2.GetProfileRequest(id="a" * 257), "id: must be at most 256")


def test_integer_range_uses_json_name() -> None:
    _fails(notifier_pb2.ListChangesRequest(page_size=1001), "pageSize", "between 0 and 1000")
    _fails(notifier_pb2.ListChangesRequest(page_size=-1), "pageSize")
    validate(notifier_pb2.ListChangesRequest(page_size=1000))


def test_repeated_items_and_counts() -> None:
    _fails(extender_pb2.BatchGetProfilesRequest(ids=["u"] * 101), "ids: at most 100 items")
    _fails(extender_pb2.BatchGetProfilesRequest(ids=["ok", "not ok"]), "ids[1]")
    _fails(extender_pb2.BatchGetProfilesRequest(), "ids: is required")


def test_list_value_items_must_be_short_strings() -> None:
    request = extender_pb2.UpdateProfileRequest(id="u1")
    request.skills.values.add().number_value = 3
    _fails(request, "skills[0]: must be a string")
    request = extender_pb2.UpdateProfileRequest(id="u1")
    request.skills.extend(["fine", "x" * 256])
    _fails(request, "skills[1]: must be at most 255")
    request = extender_pb2.UpdateProfileRequest(id="u1", skills=struct_pb2.ListValue())
    request.skills.extend([f"s{i}" for i in range(101)])
    _fails(request, "skills: at most 100 items")


def test_nested_messages_are_checked() -> None:
    request = notifier_pb2.PublishRequest(events=[notifier_pb2.ChangeEvent(user_id="u1")])
    _fails(request, "events[0].eventId: is required")


def test_expected_version_format() -> None:
    _fails(
        extender_pb2.UpdateProfileRequest(id="u1", expected_version="abc"),
        "expectedVersion: must be a version",
    )


def test_run_id_pattern() -> None:
    _fails(differ_pb2.GetSyncRequest(run_id="../x"), "runId")
