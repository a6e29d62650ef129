"""Every RPC of the three services, called over gRPC with requests drawn from its
descriptor: valid ones, and ones that break every declared limit.

Whatever the request: the answer is OK or a status a caller can act on (never
UNKNOWN, INTERNAL, DATA_LOSS, UNAVAILABLE or a deadline), with details that name
the problem and carry no stack trace.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fuzz_messages import message_class, messages
from fuzz_recorder import DERANDOMIZE, EXAMPLES, RECORDER, TRACE_MARKERS
from fuzz_target import FuzzTarget
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings

from profilesync.v1 import differ_pb2, extender_pb2, notifier_pb2
from services.common.errors import InvalidArgument
from services.common.validation import validate

SUITE = "gRPC (from descriptors)"
SERVICES = {
    "extender": extender_pb2.DESCRIPTOR.services_by_name["ProfileExtender"],
    "differ": differ_pb2.DESCRIPTOR.services_by_name["SnapshotDiffer"],
    "notifier": notifier_pb2.DESCRIPTOR.services_by_name["LobNotifier"],
}
METHODS = [(process, method) for process, service in SERVICES.items() for method in service.methods]
# Statuses that mean the service failed rather than refused the request.
SERVER_FAILURES = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
}
DEADLINE_SECONDS = 60


@pytest.fixture(scope="module")
def channels(fuzz_target: FuzzTarget) -> Iterator[dict[str, grpc.Channel]]:
    opened = {name: grpc.insecure_channel(fuzz_target.stack.address(name)) for name in SERVICES}
    yield opened
    for channel in opened.values():
        channel.close()


def keep_on_this_machine(method: str, request: Any) -> None:
    if method == "ListChanges" and request.wait_seconds > 1:
        request.wait_seconds = 1  # a long-poll would only make the case slow
    if method == "ListProfiles" and request.spread_over_seconds > 1:
        # A paced listing lasts as long as it is asked to: pacing is not what is fuzzed.
        request.spread_over_seconds = 1
    if method == "PutSubscriber" and request.url:
        try:
            parts = urllib.parse.urlsplit(request.url)
            if parts.hostname:
                userinfo, at, _ = parts.netloc.rpartition("@")
                request.url = parts._replace(netloc=f"{userinfo}{at}127.0.0.1:9").geturl()
        except ValueError:
            pass


def kind_of(request: Message) -> str:
    try:
        validate(request)
    except InvalidArgument:
        return "invalid"
    return "valid"


# The change streams never end (gRPC messages, and the REST stream's JSON lines).
CHANGE_STREAMS = frozenset({"StreamChanges", "StreamChangeLines"})


def call(
    channel: grpc.Channel, method: MethodDescriptor, request: Message, token: str
) -> tuple[grpc.StatusCode, str]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = message_class(method.output_type)
    metadata = [("authorization", f"Bearer {token}")]
    try:
        if method.server_streaming:
            stream = channel.unary_stream(
                path,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_class.FromString,
            )(request, metadata=metadata, timeout=DEADLINE_SECONDS)
            # The change stream never ends: its first item (a heartbeat at least)
            # is enough; a shard listing is read to its end.
            for _ in stream:
                if method.name in CHANGE_STREAMS:
                    stream.cancel()
                    break
        else:
            channel.unary_unary(
                path,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_class.FromString,
            )(request, metadata=metadata, timeout=DEADLINE_SECONDS)
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.CANCELLED and method.name in CHANGE_STREAMS:
            return grpc.StatusCode.OK, ""
        return code, error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize(
    ("process", "method"),
    METHODS,
    ids=[f"{m.containing_service.name}.{m.name}" for _, m in METHODS],
)
def test_rpc_with_drawn_requests(
    process: str,
    method: MethodDescriptor,
    fuzz_target: FuzzTarget,
    channels: dict[str, grpc.Channel],
) -> None:
    token = fuzz_target.user_token if method.name == "UpdateProfile" else fuzz_target.app_token

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=messages(method.input_type))
    def one_request(request: Message) -> None:
        keep_on_this_machine(method.name, request)
        code, details = call(channels[process], method, request, token)
        RECORDER.record(SUITE, method.name, kind_of(request), code.name, details)
        assert code not in SERVER_FAILURES, (
            f"{method.name} answered {code.name}: {details}\n{request}"
        )
        assert not TRACE_MARKERS.search(details), details
        if code != grpc.StatusCode.OK:
            assert details.strip(), f"{method.name} answered {code.name} without details"

    one_request()


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, raw: bytes) -> bytes:
    """A length-delimited field in protobuf wire format."""
    return _varint(number << 3 | 2) + _varint(len(raw)) + raw


def _deep_struct_request(depth: int) -> bytes:
    """An UpdateProfileRequest whose `body` nests lists `depth` levels deep."""
    value = b""
    for _ in range(depth):
        value = _field(6, _field(1, value) if value else b"")  # Value.list_value.values
    entry = _field(1, b"aboutMe") + _field(2, value)  # Struct.fields map entry
    return _field(1, b"me") + _field(8, _field(1, entry))  # id, body


UNDECODABLE = {
    "string field that is not UTF-8": ("extender", "GetProfile", _field(1, b"\xff\xfe")),
    "truncated message": ("extender", "GetProfile", b"\x0a\x20abc"),
    "wire type that does not exist": ("differ", "GetSync", b"\x0f\x01"),
    "Struct nested past the decoder's limit": (
        "extender",
        "UpdateProfile",
        _deep_struct_request(60),
    ),
}


@pytest.mark.parametrize("case", list(UNDECODABLE), ids=list(UNDECODABLE))
def test_requests_that_do_not_decode_are_invalid_arguments(
    case: str, fuzz_target: FuzzTarget, channels: dict[str, grpc.Channel]
) -> None:
    process, name, raw = UNDECODABLE[case]
    service = SERVICES[process]
    method = service.methods_by_name[name]
    token = fuzz_target.user_token if name == "UpdateProfile" else fuzz_target.app_token
    try:
        channel = channels[process]
        channel.unary_unary(
            f"/{service.full_name}/{name}",
            request_serializer=lambda raw: raw,
            response_deserializer=message_class(method.output_type).FromString,
        )(raw, metadata=[("authorization", f"Bearer {token}")], timeout=DEADLINE_SECONDS)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    RECORDER.record(SUITE, f"{name} (undecodable)", "invalid", code.name, details)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{code.name}: {details}"
    # The answer names the message the bytes were meant to be, and no decoder internals.
    wanted = method.input_type.full_name
    assert details.startswith(f"request body is not a valid {wanted} message"), details
    assert not TRACE_MARKERS.search(details), details
    assert "upb" not in details, details


def test_undecodable_request_without_a_token_is_refused_before_it_is_read(
    channels: dict[str, grpc.Channel],
) -> None:
    """The token is checked first: a caller without one learns nothing about its bytes."""
    service = SERVICES["extender"]
    method = service.methods_by_name["GetProfile"]
    try:
        channels["extender"].unary_unary(
            f"/{service.full_name}/GetProfile",
            request_serializer=lambda raw: raw,
            response_deserializer=message_class(method.output_type).FromString,
        )(UNDECODABLE["truncated message"][2], timeout=DEADLINE_SECONDS)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    assert code == grpc.StatusCode.UNAUTHENTICATED, f"{code.name}: {details}"
    assert "request body" not in details
