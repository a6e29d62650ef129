"""Which RPCs the descriptor set exposes over REST (those with a `google.api.http` rule,
and those a REST stream stands for)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

from google.api import annotations_pb2  # type: ignore[import-untyped]  # ships no stubs
from google.protobuf import descriptor_pb2

from profilesync.v1 import options_pb2

__all__ = ["RestMethod", "rest_methods"]


@dataclass(frozen=True)
class RestMethod:
    service: str
    name: str
    server_streaming: bool

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.name}"


def rest_methods(descriptor_set: pathlib.Path, services: Iterable[str]) -> list[RestMethod]:
    """The methods of the named services that carry an HTTP rule, in declaration order.

    Raises ValueError when a service is missing from the set, so a stale
    descriptor set is caught before Envoy starts rather than by a 404 later.
    """
    file_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    found: dict[str, list[RestMethod]] = {}
    for file in file_set.file:
        for service in file.service:
            full_name = f"{file.package}.{service.name}" if file.package else service.name
            # An RPC a REST stream stands for (`rest_stream_of`) stays routed
            # too, for gRPC clients that call it through the gateway.
            streamed: set[str] = {
                method.options.Extensions[options_pb2.rest_stream_of]  # type: ignore[index]
                for method in service.method
                if method.options.HasExtension(options_pb2.rest_stream_of)  # type: ignore[arg-type]
            }
            found[full_name] = [
                RestMethod(full_name, method.name, method.server_streaming)
                for method in service.method
                if method.options.HasExtension(annotations_pb2.http) or method.name in streamed
            ]
    wanted = list(services)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ValueError(f"{descriptor_set} has no service {', '.join(missing)}")
    return [method for name in wanted for method in found[name]]
