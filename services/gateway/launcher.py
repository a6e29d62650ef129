"""Starts Envoy as the REST gateway and reports where it listens.

Writes the rendered config into a per-instance folder of the state
directory, validates it, starts Envoy, learns the real port from the admin
API (the listener may be asked for port 0), writes the ready file, and
forwards SIGTERM/SIGINT to Envoy so it drains and exits cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import signal
import tempfile
from dataclasses import dataclass
from types import FrameType

from services.common.logs import configure_logging
from services.common.ready import write_ready_file
from services.common.settings import ConfigError, EnvReader, log_level, settings_or_exit
from services.gateway.envoy_config import render_config
from services.gateway.envoy_process import (
    EnvoyError,
    EnvoyProcess,
    default_envoy_path,
    validate_config,
)
from services.gateway.settings import GatewaySettings

__all__ = ["LaunchSettings", "main"]

log = logging.getLogger("services.gateway")

ENVOY_LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical", "off")


@dataclass(frozen=True)
class LaunchSettings:
    """How the launcher runs Envoy (as opposed to what Envoy is configured to do)."""

    envoy_path: str
    state_dir: pathlib.Path | None
    ready_file: str | None
    ready_timeout_seconds: float
    log_level: str
    envoy_log_level: str

    @classmethod
    def from_env(cls, env: EnvReader) -> LaunchSettings:
        state_dir = env.optional("STATE_DIR")
        envoy_log_level = env.text("ENVOY_LOG_LEVEL", "warning").lower()
        if envoy_log_level not in ENVOY_LOG_LEVELS:
            raise ConfigError(
                f"ENVOY_LOG_LEVEL must be one of {', '.join(ENVOY_LOG_LEVELS)}, "
                f"got {envoy_log_level!r}"
            )
        envoy_path = env.optional("ENVOY_PATH") or default_envoy_path()
        if not os.access(envoy_path, os.X_OK):
            raise ConfigError(f"ENVOY_PATH: {envoy_path} is not an executable file")
        return cls(
            envoy_path=envoy_path,
            state_dir=pathlib.Path(state_dir).resolve() if state_dir else None,
            ready_file=env.optional("READY_FILE"),
            ready_timeout_seconds=env.number("GATEWAY_READY_TIMEOUT_SECONDS", 30.0, minimum=1.0),
            log_level=log_level(env),
            envoy_log_level=envoy_log_level,
        )


def _work_dir(state_dir: pathlib.Path | None) -> pathlib.Path:
    # One folder per instance, so gateways sharing a state directory never
    # overwrite each other's config or admin address file.
    if state_dir is None:
        return pathlib.Path(tempfile.mkdtemp(prefix="profilesync-gateway-"))
    work_dir = state_dir / f"gateway-{os.getpid()}"
    work_dir.mkdir(parents=True, exist_ok=True)
    return work_dir


def public_url(host: str, port: int) -> str:
    """The URL a local client uses; a wildcard listener is reached over loopback."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class _Forwarder:
    """Passes SIGTERM/SIGINT on to Envoy; remembers one that came before Envoy started."""

    def __init__(self) -> None:
        self.envoy: EnvoyProcess | None = None
        self.received: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if self.envoy is not None:
            # Envoy drains and exits 0 on either signal.
            self.envoy.send_signal(signal.SIGTERM)


def _serve(gateway: GatewaySettings, launch: LaunchSettings, work_dir: pathlib.Path) -> int:
    config_path = work_dir / "envoy.json"
    config_path.write_text(json.dumps(render_config(gateway), indent=2))
    validate_config(launch.envoy_path, config_path)

    forwarder = _Forwarder()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forwarder)
    envoy = EnvoyProcess(launch.envoy_path, config_path, work_dir, launch.envoy_log_level)
    envoy.start()
    forwarder.envoy = envoy
    if forwarder.received is not None:
        envoy.send_signal(signal.SIGTERM)
    try:
        port = envoy.wait_ready(launch.ready_timeout_seconds)
    except EnvoyError:
        envoy.kill()
        raise
    url = public_url(gateway.host, port)
    log.info(
        "gateway listening", extra={"url": url, "adminUrl": envoy.admin_url, "envoyPid": envoy.pid}
    )
    if launch.ready_file:
        write_ready_file(
            launch.ready_file,
            {"url": url, "port": port, "adminUrl": envoy.admin_url, "envoyPid": envoy.pid},
        )
    code = envoy.wait()
    if forwarder.received is not None and code in (0, -signal.SIGTERM):
        log.info("gateway stopped")
        return 0
    log.error("envoy exited unexpectedly", extra={"exitCode": code})
    return 1


def _settings() -> tuple[LaunchSettings, GatewaySettings]:
    env = EnvReader()
    return LaunchSettings.from_env(env), GatewaySettings.from_env(env)


def main() -> int:
    launch, gateway = settings_or_exit(_settings, "gateway")
    configure_logging("gateway", launch.log_level)
    work_dir = _work_dir(launch.state_dir)
    try:
        return _serve(gateway, launch, work_dir)
    except (EnvoyError, ValueError) as error:
        # ValueError: the descriptor set lacks a service (stale build).
        log.error("gateway failed to start: %s", error)
        return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
