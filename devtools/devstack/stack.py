"""The whole profile-sync stack as local processes.

    with Stack(StackOptions(state_dir=path)) as stack:   # ports 0: free ports
        stack.gateway_url, stack.emulator_url, stack.extender_addr, ...

Started in dependency order (Redis, Graph emulator, notifier, extender,
differ, gateway), each reporting where it listens through a ready file, and
stopped in reverse order by process id. Each dies with the process that runs
the stack if that one ends without stopping them (devtools/processes.py).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from devtools.devstack.redis_server import start_redis
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from devtools.processes import ManagedProcess, python_module

__all__ = ["FIXED_PORTS", "Stack", "StackOptions"]

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

# The fixed ports the README lists, used by `make dev`; everything else asks for port 0.
FIXED_PORTS = {
    "gateway": 8080,
    "extender": 50051,
    "differ": 50052,
    "notifier": 50053,
    "emulator": 8443,
}


@dataclass
class StackOptions:
    state_dir: pathlib.Path
    users: int = 50
    seed: int = 1
    ports: dict[str, int] = field(default_factory=dict)
    # Extra environment for every service (e.g. GRAPH_MAX_CONCURRENCY).
    env: dict[str, str] = field(default_factory=dict)
    with_gateway: bool = True
    log_level: str = "INFO"
    # Redis with an append-only file, so a restart keeps its data.
    redis_persistent: bool = False
    # An external Redis (a single node or a cluster, `redis://` or `rediss://`)
    # used as it is instead of starting one: REDIS_URL where set. The stack
    # never empties it; give it a Redis (or database) of its own.
    redis_url: str | None = field(default_factory=lambda: os.environ.get("REDIS_URL") or None)
    # The emulator's kinds of account (its --tenant-mix): "realistic" for `make dev` and
    # `make demo` (guests, rooms, unlicensed members, ...); "none" (every user has a
    # profile) where a test counts on every user being synced.
    tenant_mix: str = "none"


class Stack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.state_dir = options.state_dir.resolve()
        self.processes: dict[str, ManagedProcess] = {}
        self.redis_url = ""
        self.emulator: dict[str, Any] = {}

    # -- where things are ---------------------------------------------------
    @property
    def emulator_url(self) -> str:
        return str(self.emulator["url"])

    @property
    def ca_file(self) -> str:
        return str(self.emulator["caFile"])

    def address(self, name: str) -> str:
        return str(self.processes[name].ready["address"])

    @property
    def extender_addr(self) -> str:
        return self.address("extender")

    @property
    def differ_addr(self) -> str:
        return self.address("differ")

    @property
    def notifier_addr(self) -> str:
        return self.address("notifier")

    @property
    def snapshot_store(self) -> pathlib.Path:
        """The differ's object store: its keys start with `snapshots/`, so the
        snapshots are in `<state dir>/snapshots/shard-<i>-of-<n>/`."""
        return self.state_dir

    @property
    def gateway_url(self) -> str:
        return str(self.processes["gateway"].ready["url"])

    # -- lifecycle ----------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _port(self, name: str) -> str:
        return str(self.options.ports.get(name, 0))

    def _service_env(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        env = {
            **os.environ,
            # The emulator plays Entra ID: every service checks callers' tokens
            # against it, and the extender and differ get tokens from it.
            "AZURE_TENANT_ID": str(self.emulator["tenantId"]),
            "AZURE_CLIENT_ID": DEFAULT_CLIENT_ID,
            "AZURE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "AZURE_AUTHORITY_HOST": self.emulator_url,
            "AZURE_CA_BUNDLE": self.ca_file,
            "PYTHONPATH": str(ROOT),
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": self._port(name),
            "METRICS_PORT": "0",
            "READY_FILE": str(self.state_dir / f"{name}.ready.json"),
            "LOG_LEVEL": self.options.log_level,
            "SHUTDOWN_GRACE_SECONDS": "3",
            **self.options.env,
            **extra,
        }
        return env

    def _launch(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(
            name,
            argv,
            log_dir=self.state_dir / "logs",
            env=env,
            ready_file=pathlib.Path(env["READY_FILE"]) if "READY_FILE" in env else None,
            cwd=ROOT,
        )
        self.processes[name] = process
        process.start()
        return process

    def _move_nested_snapshots(self) -> None:
        """Earlier releases kept the store one folder deeper (`snapshots/snapshots/`)."""
        nested = self.state_dir / "snapshots" / "snapshots"
        if not nested.is_dir():
            return
        for child in nested.iterdir():
            target = self.state_dir / "snapshots" / child.name
            if not target.exists():
                child.rename(target)
        shutil.rmtree(nested, ignore_errors=True)

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._move_nested_snapshots()
        if self.options.redis_url:
            self.redis_url = self.options.redis_url
        else:
            redis_process, self.redis_url = start_redis(
                self.state_dir / "redis",
                port=self.options.ports.get("redis") or None,
                persistent=self.options.redis_persistent,
            )
            self.processes["redis"] = redis_process

        emulator_ready = self.state_dir / "emulator.ready.json"
        self._launch(
            "emulator",
            python_module(
                "devtools.graph_emulator",
                "--users",
                str(self.options.users),
                "--seed",
                str(self.options.seed),
                "--tenant-mix",
                self.options.tenant_mix,
                "--port",
                self._port("emulator"),
                "--state-dir",
                str(self.state_dir / "graph_emulator"),
                "--ready-file",
                str(emulator_ready),
            ),
            {**os.environ, "PYTHONPATH": str(ROOT), "READY_FILE": str(emulator_ready)},
        )
        self.emulator = self.processes["emulator"].wait_ready(timeout=120)

        notifier = self._launch(
            "notifier",
            python_module("services.lob_notifier"),
            self._service_env(
                "notifier",
                {
                    "REDIS_URL": self.redis_url,
                    # The embedded default's own webhook receivers listen on loopback.
                    "NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS": "127.0.0.0/8,::1/128",
                },
            ),
        )
        extender = self._launch(
            "extender",
            python_module("services.profile_extender"),
            self._service_env(
                "extender",
                {"GRAPH_URL": f"{self.emulator_url}/v1.0", "REDIS_URL": self.redis_url},
            ),
        )
        notifier.wait_ready()
        extender.wait_ready()
        self._launch(
            "differ",
            python_module("services.snapshot_differ", "serve"),
            self._service_env(
                "differ",
                {
                    "EXTENDER_ADDR": self.extender_addr,
                    "NOTIFIER_ADDR": self.notifier_addr,
                    "REDIS_URL": self.redis_url,
                    "SNAPSHOT_STORE": str(self.snapshot_store),
                },
            ),
        ).wait_ready()
        if self.options.with_gateway:
            self._launch(
                "gateway",
                python_module("services.gateway"),
                {
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "GATEWAY_PORT": self._port("gateway"),
                    "GATEWAY_DESCRIPTOR_SET": str(ROOT / "build" / "profilesync.pb"),
                    "EXTENDER_ADDR": self.extender_addr,
                    "DIFFER_ADDR": self.differ_addr,
                    "NOTIFIER_ADDR": self.notifier_addr,
                    "READY_FILE": str(self.state_dir / "gateway.ready.json"),
                    "STATE_DIR": str(self.state_dir / "gateway"),
                    # The console's sign-in may then get tokens from the emulator.
                    "EMULATOR_URL": self.emulator_url,
                    "EMULATOR_CA_FILE": self.ca_file,
                },
            ).wait_ready(timeout=60)

    def kill_redis(self) -> None:
        """SIGKILLs Redis (a crashed node); `start_redis_again` brings it back."""
        self._own_redis()
        process = self.processes["redis"]
        process.signal(signal.SIGKILL)
        process.stop()

    def start_redis_again(self) -> None:
        """A new Redis on the same port and data directory."""
        self._own_redis()
        port = int(self.redis_url.rsplit(":", 1)[1].split("/")[0])
        self.processes["redis"], _ = start_redis(
            self.state_dir / "redis", port=port, persistent=self.options.redis_persistent
        )

    def _own_redis(self) -> None:
        if self.options.redis_url:
            raise RuntimeError(
                f"this stack uses the external Redis {self.options.redis_url} (REDIS_URL); "
                "it cannot stop or restart it"
            )

    def differ_env(self) -> dict[str, str]:
        """Environment for a one-off `python -m services.snapshot_differ run`."""
        return self._service_env(
            "differ-run",
            {
                "EXTENDER_ADDR": self.extender_addr,
                "NOTIFIER_ADDR": self.notifier_addr,
                "REDIS_URL": self.redis_url,
                "SNAPSHOT_STORE": str(self.snapshot_store),
            },
        )

    def stop(self) -> dict[str, int | None]:
        """Stops every process, newest first; returns their exit codes."""
        codes = {}
        for name in reversed(list(self.processes)):
            codes[name] = self.processes[name].stop()
        return codes

    def logs_text(self) -> str:
        """Everything every process has logged so far."""
        return "\n".join(
            process.log_path.read_text(errors="replace")
            for process in self.processes.values()
            if process.log_path.exists()
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{process.tail(40)}" for name, process in self.processes.items()
        )
