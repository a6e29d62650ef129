"""A service's gRPC server inside the calling process, on a free loopback port,
for tests and benchmarks that call a servicer through real gRPC.

    async with serving(binding(servicer)) as port:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from profilesync.v1 import extender_pb2, extender_pb2_grpc
from services.common.server import ServiceBinding, create_server
from services.common.settings import ServerSettings
from services.search import SearchIndex, search_profiles

__all__ = ["LOOPBACK_SERVER", "SearchOnlyServicer", "serving", "start_server"]

# No metrics port, no ready file, one second to drain when stopped.
LOOPBACK_SERVER = ServerSettings(
    host="127.0.0.1",
    port=0,
    metrics_port=None,
    ready_file=None,
    shutdown_grace_seconds=1.0,
    log_level="INFO",
)


async def start_server(
    *bindings: ServiceBinding, settings: ServerSettings = LOOPBACK_SERVER, **overrides: Any
) -> tuple[grpc.aio.Server, int]:
    """Starts a server for `bindings`; returns it and the port it listens on."""
    server, port, _ = await create_server(
        dataclasses.replace(settings, **overrides), list(bindings)
    )
    await server.start()
    return server, port


@asynccontextmanager
async def serving(
    *bindings: ServiceBinding, settings: ServerSettings = LOOPBACK_SERVER, **overrides: Any
) -> AsyncIterator[int]:
    """The port of a server for `bindings`, stopped when the block ends."""
    server, port = await start_server(*bindings, settings=settings, **overrides)
    try:
        yield port
    finally:
        await server.stop(None)


class SearchOnlyServicer(extender_pb2_grpc.ProfileExtenderServicer):
    """The extender's search and nothing else: searches over an index, without Graph."""

    def __init__(self, index: SearchIndex) -> None:
        self._index = index

    async def SearchProfiles(
        self, request: extender_pb2.SearchProfilesRequest, context: Any
    ) -> extender_pb2.SearchProfilesResponse:
        return await search_profiles(self._index, request)
