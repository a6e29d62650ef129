"""Decoding request bytes inside the handler, so bad bytes get INVALID_ARGUMENT.

grpc.aio runs a method handler's `request_deserializer` in its core, before any
interceptor code sees the call, and answers UNKNOWN with the exception's class
name when it raises. The server interceptor therefore registers each method with
no deserializer (the behaviour receives the raw bytes) and calls
`decode_request` itself:

    request = decode_request(handler.request_deserializer, raw)

which raises InvalidArgument naming the message type and, where protobuf says,
what was wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from services.common.errors import InvalidArgument

__all__ = ["Deserializer", "decode_request"]

Deserializer = Callable[[bytes], Any]

# protobuf's (upb) reasons, said in a caller's words; any other reason is left
# out rather than shown as a decoder internal.
_REASONS = {
    "String field had bad UTF-8": "a string field is not valid UTF-8",
    "Wire format was corrupt": "the wire format is corrupt (cut short, or a wire type "
    "that does not exist)",
    "Exceeded upb_DecodeOptions_MaxDepth": "messages nest deeper than the decoder allows",
}


def _type_name(deserializer: Deserializer) -> str:
    """The full protobuf name of the message `deserializer` builds (`X.FromString`)."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    name = getattr(descriptor, "full_name", None)
    return name if isinstance(name, str) else "request"


def _reason(error: DecodeError) -> str:
    _, _, detail = str(error).rpartition(": ")
    return _REASONS.get(detail.strip(), "")


def decode_request(deserializer: Deserializer | None, raw: Any) -> Any:
    """`raw` as the handler's request message; InvalidArgument if it does not decode."""
    if deserializer is None or not isinstance(raw, bytes):
        return raw
    try:
        return deserializer(raw)
    except DecodeError as error:
        reason = _reason(error)
        message = f"request body is not a valid {_type_name(deserializer)} message"
        raise InvalidArgument(f"{message}: {reason}" if reason else message) from None
