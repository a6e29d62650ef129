"""A local Redis Cluster (cluster mode enabled, like ElastiCache Serverless or a
cluster-mode-enabled replication group) for tests and benchmarks.

    cluster = start_redis_cluster(tmp_dir)             # three primaries
    cluster.url                                        # redis://127.0.0.1:<port of the first>/0
    cluster.nodes[1].stop(); cluster.restart(1)        # a primary lost, then back
    cluster.stop()

Each node is an ordinary `redis-server --cluster-enabled yes`; `redis-cli
--cluster create` assigns the 16384 slots, and the cluster is ready once every
node reports `cluster_state:ok`.
"""

from __future__ import annotations

import pathlib
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

from devtools.devstack.redis_server import redis_server_argv
from devtools.processes import ManagedProcess

__all__ = ["RedisCluster", "start_redis_cluster"]

# A node also listens on port + 10000 (the cluster bus).
_BUS_OFFSET = 10000


def _free_cluster_port() -> int:
    """A port free on 127.0.0.1 whose cluster-bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + _BUS_OFFSET > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + _BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair (port, port + 10000) on 127.0.0.1")


@dataclass
class RedisCluster:
    state_dir: pathlib.Path
    ports: list[int]
    # An append-only file fsynced on every write, so a node killed and started
    # again keeps its data (as ElastiCache's durable nodes do).
    persistent: bool = False
    nodes: list[ManagedProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def _node(self, index: int) -> ManagedProcess:
        port = self.ports[index]
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; a local cluster needs it")
        argv = redis_server_argv(binary, port, self.state_dir, persistent=self.persistent)
        argv += [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self.state_dir / f"nodes-{port}.conf"),
            # A lost primary is noticed within a second (failover tests).
            "--cluster-node-timeout",
            "1000",
            # The nodes share one directory: each its own append-only files.
            "--appendfilename",
            f"appendonly-{port}.aof",
            "--appenddirname",
            f"aof-{port}",
        ]
        return ManagedProcess(f"redis-{port}", argv, log_dir=self.state_dir)

    def start(self, *, replicas: int = 0) -> RedisCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.nodes = [self._node(i).start() for i in range(len(self.ports))]
        for node, port in zip(self.nodes, self.ports, strict=True):
            _wait_for(node, port, "PONG", "ping")
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed; creating a local cluster needs it")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node reports `cluster_state:ok`."""
        for node, port in zip(self.nodes, self.ports, strict=True):
            if node.alive():
                _wait_for(node, port, "cluster_state:ok", "cluster", "info", timeout=timeout)

    def restart(self, index: int) -> None:
        """Starts node `index` again (same port, same nodes file: it rejoins)."""
        self.nodes[index] = self._node(index).start()
        _wait_for(self.nodes[index], self.ports[index], "PONG", "ping")
        self.wait_ok()

    def index_of(self, port: int) -> int:
        return self.ports.index(port)

    def kill(self, index: int) -> None:
        """SIGKILL node `index`: a primary lost without warning."""
        node = self.nodes[index]
        node.signal(signal.SIGKILL)
        node.stop()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis_cluster(
    state_dir: pathlib.Path, *, primaries: int = 3, replicas: int = 0, persistent: bool = False
) -> RedisCluster:
    """Starts `primaries` x (1 + `replicas`) nodes on 127.0.0.1 and forms a cluster."""
    ports = [_free_cluster_port() for _ in range(primaries * (1 + replicas))]
    cluster = RedisCluster(state_dir, ports, persistent=persistent)
    try:
        return cluster.start(replicas=replicas)
    except BaseException:
        cluster.stop()
        raise


def _wait_for(
    node: ManagedProcess, port: int, expected: str, *command: str, timeout: float = 15.0
) -> None:
    cli = shutil.which("redis-cli") or "redis-cli"
    deadline = time.monotonic() + timeout
    answer = ""
    while time.monotonic() < deadline:
        node.wait_ready(timeout=1)  # raises if it died
        done = subprocess.run(
            [cli, "-h", "127.0.0.1", "-p", str(port), *command],
            capture_output=True,
            text=True,
            timeout=10,
        )
        answer = done.stdout
        if expected in answer:
            return
        time.sleep(0.1)
    raise TimeoutError(
        f"{node.name}: no {expected!r} from {' '.join(command)} within {timeout:.0f}s "
        f"(last answer {answer.strip()!r}):\n{node.tail()}"
    )
