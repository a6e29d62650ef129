"""A Redis for the embedded default: Debian's redis-server where installed,
an in-process compatible server (fakeredis over TCP) otherwise."""

from __future__ import annotations

import pathlib
import shutil

from devtools.processes import ManagedProcess, free_port, python_module

__all__ = ["start_redis"]


def start_redis(
    state_dir: pathlib.Path, *, port: int | None = None, persistent: bool = False
) -> tuple[ManagedProcess, str]:
    """Starts a Redis on 127.0.0.1 and returns the process and its URL.

    Persistence is off by default: the baseline is a cache rebuilt from the
    object store. `persistent=True` (an append-only file, fsync on every
    write) stands in for ElastiCache with durability, where the change log
    and run records survive a restart of the node.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    binary = shutil.which("redis-server")
    if binary is not None:
        argv = redis_server_argv(binary, port, state_dir, persistent=persistent)
        argv += ["--protected-mode", "yes"]
        name = "redis"
    else:
        argv = python_module("devtools.devstack.fake_redis", "--port", str(port))
        name = "fake-redis"
    process = ManagedProcess(name, argv, log_dir=state_dir).start()
    _wait_for_ping(process, port)
    return process, f"redis://127.0.0.1:{port}/0"


def redis_server_argv(
    binary: str, port: int, state_dir: pathlib.Path, *, persistent: bool
) -> list[str]:
    """A redis-server on 127.0.0.1:`port` keeping its files in `state_dir`: no
    snapshots; with `persistent`, an append-only file written through on every
    write (ElastiCache with durability)."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes" if persistent else "no",
        "--appendfsync",
        "always",
        "--dir",
        str(state_dir),
    ]


def _wait_for_ping(process: ManagedProcess, port: int, timeout: float = 15.0) -> None:
    import time

    import redis

    deadline = time.monotonic() + timeout
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    try:
        while time.monotonic() < deadline:
            process.wait_ready(timeout=1)  # raises if it died
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
    finally:
        client.close()
    raise TimeoutError(f"{process.name} did not answer PING on port {port}:\n{process.tail()}")
