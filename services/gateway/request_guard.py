"""A Lua filter that refuses, by name, what the gRPC services would answer with a 500.

The transcoder passes request headers on as gRPC metadata, the decoded path
and query into string fields and a free-form JSON body into nested
google.protobuf.Struct messages. gRPC refuses some of that before any of our
code runs, as INTERNAL or UNKNOWN: a header name outside `[0-9a-z_.-]`
("Illegal header key"), a `grpc-timeout` it cannot parse, a `-bin` header that
is not base64, a string field that is not UTF-8, a message nested past the
decoder's depth limit. This filter answers those with 400 and a message naming
the header, the part of the URL or the body's depth, before any backend sees
them:

    http_filters = [buffer, request_guard_filter(), transcoder, router]

The filter's source is request_guard.lua, beside this module. The body it gives
is plain text; the gateway's local-reply mapping wraps it as
`{"code": 3, "message": ...}` like every other refusal.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

__all__ = ["LUA_SOURCE", "request_guard_filter"]

# The filter's source (request_guard.lua beside this module), read once at import.
LUA_SOURCE = (importlib.resources.files("services.gateway") / "request_guard.lua").read_text()


def request_guard_filter() -> dict[str, Any]:
    """The HTTP filter entry, after the body-size limit and before the transcoder."""
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": LUA_SOURCE},
        },
    }
