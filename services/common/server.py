"""gRPC server bootstrap shared by the services.

    server, port, health = await create_server(settings, [ServiceBinding(name, register)])
    await server.start()

or, for a service's `__main__`, `run_service(...)`, which also writes the
ready file, serves metrics, and on SIGTERM flips health to NOT_SERVING and
stops with a grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from grpc_health.v1 import _async as health_aio  # published as grpc_health.v1.health.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from services.common.auth import TokenVerifier
from services.common.entra import EntraSettings
from services.common.interceptors import ServiceInterceptor
from services.common.ready import write_ready_file
from services.common.settings import ServerSettings

__all__ = ["ServiceBinding", "ServiceSettings", "create_server", "run_service"]

log = logging.getLogger(__name__)

# Large enough for a batch of profiles or a page of change events.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ServiceSettings(Protocol):
    """What every service's settings carry: how it serves, and its app in Entra."""

    @property
    def server(self) -> ServerSettings: ...

    @property
    def entra(self) -> EntraSettings: ...


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer to add to the server, with its full gRPC service name."""

    name: str
    register: Callable[[grpc.aio.Server], None]


async def create_server(
    settings: ServerSettings,
    bindings: Sequence[ServiceBinding],
    *,
    verifier: TokenVerifier | None = None,
) -> tuple[grpc.aio.Server, int, health_aio.HealthServicer]:
    """`verifier` checks every caller's token; services always pass one, only
    in-process servicer tests leave it out."""
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(verifier)],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            # Our clients ping every 30 s (grpc_clients.py) to keep long calls
            # alive through idle stretches: a paced sweep's listing can send
            # nothing for minutes. gRPC's defaults would count those pings as
            # abuse and cut the call ("too many pings").
            ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )
    for binding in bindings:
        binding.register(server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [b.name for b in bindings]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot listen on {settings.host}:{settings.port}")
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer


async def run_service(
    service_label: str,
    service_settings: ServiceSettings,
    bindings: Sequence[ServiceBinding],
    *,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight calls and returns.

    Every call's token is verified against the service's app in Entra.
    `on_shutdown` runs as draining starts (e.g. to end open streams);
    `on_stop` after the server has stopped (e.g. to close clients).
    """
    settings = service_settings.server
    verifier = TokenVerifier(service_settings.entra)
    server, port, health_servicer = await create_server(settings, bindings, verifier=verifier)
    metrics_port = None
    if settings.metrics_port is not None:
        metrics_server, _ = start_http_server(settings.metrics_port, addr=settings.host)
        metrics_port = metrics_server.server_port
    await server.start()
    log.info("%s listening", service_label, extra={"port": port, "metricsPort": metrics_port})
    if settings.ready_file:
        write_ready_file(
            settings.ready_file,
            {"address": f"{settings.host}:{port}", "port": port, "metricsPort": metrics_port},
        )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
        log.info("%s shutting down", service_label)
        # Readiness fails first so load balancers stop sending new calls.
        await health_servicer.enter_graceful_shutdown()
        if on_shutdown is not None:
            await on_shutdown()
    finally:
        await server.stop(settings.shutdown_grace_seconds)
        if on_stop is not None:
            await on_stop()
        log.info("%s stopped", service_label)
