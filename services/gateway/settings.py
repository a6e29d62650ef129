"""The gateway's settings, read from the environment once at start-up."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from services.common.settings import ConfigError, EnvReader
from services.console.settings import ConsoleSettings

__all__ = ["BACKEND_SERVICES", "Backend", "GatewaySettings", "parse_address"]

# Full gRPC service name -> the environment variable holding its `host:port`.
BACKEND_SERVICES: dict[str, str] = {
    "profilesync.v1.ProfileExtender": "EXTENDER_ADDR",
    "profilesync.v1.SnapshotDiffer": "DIFFER_ADDR",
    "profilesync.v1.LobNotifier": "NOTIFIER_ADDR",
}


@dataclass(frozen=True)
class Backend:
    """Where one gRPC service listens."""

    service: str
    host: str
    port: int


def parse_address(name: str, value: str) -> tuple[str, int]:
    """Splits `host:port` (IPv6 as `[::1]:port`), naming the variable when it is malformed."""
    host, sep, port_text = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ConfigError(f"{name} must be host:port, got {value!r}")
    return host, int(port_text)


# Beside the descriptor set in the repository; `make protos` regenerates it.
DEFAULT_OPENAPI_FILE = "docs/openapi.json"


def _openapi_file(env: EnvReader) -> pathlib.Path | None:
    """GATEWAY_OPENAPI_FILE: the document to serve; `off` serves none."""
    value = env.text("GATEWAY_OPENAPI_FILE", DEFAULT_OPENAPI_FILE)
    if value.lower() == "off":
        return None
    path = pathlib.Path(value).resolve()
    if not path.is_file():
        raise ConfigError(
            f"GATEWAY_OPENAPI_FILE: no OpenAPI document at {path} "
            "(run make protos, or set it to off)"
        )
    return path


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the Envoy configuration is rendered from."""

    descriptor_set: pathlib.Path
    backends: tuple[Backend, ...]
    host: str = "127.0.0.1"
    # 0 lets the kernel choose; the launcher then reads the port from Envoy's admin API.
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int = 0
    # Larger JSON bodies are refused with 413 before they are transcoded.
    max_request_bytes: int = 1024 * 1024
    # A stream with no event for this long is closed; the client resumes from its cursor.
    stream_idle_timeout_seconds: int = 3600
    # The OpenAPI document served at /openapi.json; None serves none.
    openapi_file: pathlib.Path | None = None
    # Refuse headers and URLs that gRPC would answer with INTERNAL (see
    # request_guard.py). from_env turns it on, as the Helm chart does by default
    # (gateway.requestGuard).
    request_guard: bool = False
    # Downstream connections Envoy holds at once (its overload manager); more
    # are not accepted until some close. A change stream over HTTP/1.1 is one.
    max_connections: int = 10_000
    # Calls in flight to one backend service (its circuit breaker); more are
    # answered 429 with Retry-After, never queued without bound.
    max_backend_requests: int = 10_000
    # Concurrent streams on one HTTP/2 client connection.
    max_streams_per_connection: int = 100
    # A second listener serving only Envoy's statistics for Prometheus (GET /metrics),
    # from the admin interface at a fixed admin_port; None serves none. The Helm
    # chart turns it on.
    metrics_port: int | None = None
    # The operations console under /console/ (services/console); None serves none.
    # from_env serves it, as the Helm chart does by default (gateway.console).
    console: ConsoleSettings | None = None

    @classmethod
    def from_env(cls, env: EnvReader) -> GatewaySettings:
        backends = []
        for service, variable in BACKEND_SERVICES.items():
            host, port = parse_address(variable, env.text(variable))
            backends.append(Backend(service, host, port))
        descriptor_set = pathlib.Path(
            env.text("GATEWAY_DESCRIPTOR_SET", "build/profilesync.pb")
        ).resolve()
        if not descriptor_set.is_file():
            raise ConfigError(
                f"GATEWAY_DESCRIPTOR_SET: no descriptor set at {descriptor_set} (run make protos)"
            )
        return cls(
            descriptor_set=descriptor_set,
            openapi_file=_openapi_file(env),
            request_guard=env.flag("GATEWAY_REQUEST_GUARD", True),
            console=ConsoleSettings.from_env(env),
            backends=tuple(backends),
            # Loopback unless told otherwise: the chart sets 0.0.0.0 inside pods.
            host=env.text("GATEWAY_HOST", "127.0.0.1"),
            port=env.integer("GATEWAY_PORT", 8080, maximum=65535),
            admin_host=env.text("GATEWAY_ADMIN_HOST", "127.0.0.1"),
            admin_port=env.integer("GATEWAY_ADMIN_PORT", 0, maximum=65535),
            max_request_bytes=env.integer(
                "GATEWAY_MAX_REQUEST_BYTES", 1024 * 1024, minimum=1024, maximum=64 * 1024 * 1024
            ),
            stream_idle_timeout_seconds=env.integer(
                "GATEWAY_STREAM_IDLE_TIMEOUT_SECONDS", 3600, minimum=0, maximum=86400
            ),
            max_connections=env.integer("GATEWAY_MAX_CONNECTIONS", 10_000, minimum=1),
            max_backend_requests=env.integer("GATEWAY_MAX_BACKEND_REQUESTS", 10_000, minimum=1),
            max_streams_per_connection=env.integer(
                "GATEWAY_MAX_STREAMS_PER_CONNECTION", 100, minimum=1, maximum=2_147_483_647
            ),
        )
