"""Reading typed settings from the environment, once, at start-up.

Each service declares a frozen dataclass of its settings and a
`from_env()` that builds it with the readers below; a missing or malformed
setting stops start-up with a ConfigError naming the variable. A service's
entry point loads them through `settings_or_exit`:

    settings = settings_or_exit(ExtenderSettings.from_env, "profile_extender: configuration error")
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["EXIT_CONFIG", "ConfigError", "EnvReader", "ServerSettings", "settings_or_exit"]

# The exit status of a process that refused to start on its settings; the
# services' documented exit codes and their tests rely on it.
EXIT_CONFIG = 2

T = TypeVar("T")


class ConfigError(Exception):
    """A required setting is missing or a setting cannot be parsed."""


class EnvReader:
    """Typed access to an environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31 - 1
    ) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")


# Far above what a replica of the extender or the differ serves at once; the
# notifier raises it above its cap on open streams (see its settings).
DEFAULT_MAX_CONCURRENT_RPCS = 1_000


@dataclass(frozen=True)
class ServerSettings:
    """What every gRPC service needs to listen, log and report."""

    host: str
    port: int
    metrics_port: int | None
    ready_file: str | None
    shutdown_grace_seconds: float
    log_level: str
    # Calls (streams included) the server runs at once; more are refused at
    # once with RESOURCE_EXHAUSTED instead of queueing without bound.
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS

    @classmethod
    def from_env(
        cls,
        env: EnvReader,
        *,
        default_port: int,
        default_max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS,
    ) -> ServerSettings:
        # 9464 is the usual Prometheus exporter port; -1 turns the endpoint off.
        metrics_port = env.integer("METRICS_PORT", 9464, minimum=-1, maximum=65535)
        return cls(
            # Loopback unless told otherwise: the chart sets 0.0.0.0 inside pods.
            host=env.text("GRPC_HOST", "127.0.0.1"),
            port=env.integer("GRPC_PORT", default_port, maximum=65535),
            metrics_port=None if metrics_port < 0 else metrics_port,
            ready_file=env.optional("READY_FILE"),
            shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 10.0),
            log_level=log_level(env),
            max_concurrent_rpcs=env.integer(
                "GRPC_MAX_CONCURRENT_RPCS", default_max_concurrent_rpcs, minimum=1
            ),
        )


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(env: EnvReader) -> str:
    """LOG_LEVEL, checked here so a typo stops the service with a message, not a traceback."""
    level = env.text("LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def settings_or_exit(load: Callable[[], T], prefix: str) -> T:
    """The settings `load` returns; on ConfigError, exit with EXIT_CONFIG.

    The reason goes to stderr as one line, `<prefix>: <reason>`, and without a
    traceback: the reason names the variable, which is all an operator needs.
    """
    try:
        return load()
    except ConfigError as error:
        print(f"{prefix}: {error}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
