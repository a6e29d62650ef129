"""Connecting to Redis (or ElastiCache, Valkey) from a URL: a single node or a
cluster (cluster mode enabled, ElastiCache Serverless).

`REDIS_CLUSTER` says which: `true`, `false`, or `auto` (the default: the node
in the URL is asked `INFO cluster` once, at start-up). Every key layout keeps
what one command, transaction or script touches in one hash slot, so the same
code runs on both.

Every client has a bounded pool that waits for a free connection (redis-py's
BlockingConnectionPool) rather than failing at once when all are busy: a
burst queues for up to `pool_timeout` seconds, then the call answers
UNAVAILABLE (see unavailable_when_redis_is). Parts that must never wait
behind each other get separate clients, hence separate pools (the notifier's
publisher and its readers, say).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import redis
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from services.common.errors import Unavailable
from services.common.settings import ConfigError

__all__ = [
    "REDIS_UNAVAILABLE",
    "as_bytes",
    "as_text",
    "cluster_mode",
    "connect",
    "unavailable_when_redis_is",
]

log = logging.getLogger(__name__)

CLUSTER_ENV = "REDIS_CLUSTER"

# Connections one client may open; callers beyond it wait (see POOL_TIMEOUT_SECONDS).
DEFAULT_MAX_CONNECTIONS = 100
# How long a call waits for a free connection before it is answered UNAVAILABLE.
# Long enough to ride out a burst, short enough that a caller learns of an
# overload well inside its own deadline.
POOL_TIMEOUT_SECONDS = 5.0


# "Redis cannot answer now; the same request later can succeed": a node down
# or restarting, a failover or resharding in progress (TRYAGAIN, CLUSTERDOWN,
# a slot without a primary). MOVED and ASK never get here: the cluster client
# follows them.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (a restarting replica)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a failover in progress
    redis_errors.OutOfMemoryError,
    redis_errors.TryAgainError,
    redis_errors.ClusterError,  # CLUSTERDOWN, MASTERDOWN, retries used up
    redis_errors.SlotNotCoveredError,
)

_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 5,
    "socket_timeout": 30,
    "health_check_interval": 15,
}


def cluster_mode(url: str, declared: str | None = None) -> bool:
    """Whether `url` names a Redis Cluster: as declared (`REDIS_CLUSTER`), or,
    for `auto`, as the node answers `INFO cluster`. A node that cannot be
    reached is taken as a single node (its errors then surface at first use)."""
    value = (declared if declared is not None else os.environ.get("REDIS_CLUSTER", "")).strip()
    value = value.lower() or "auto"
    if value == "true":
        return True
    if value == "false":
        return False
    if value != "auto":
        raise ConfigError(f"{CLUSTER_ENV} must be true, false or auto, got {value!r}")
    probe = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        info = probe.info("cluster")
    except redis_errors.RedisError as error:
        log.warning(
            "%s=auto: could not ask Redis whether it is a cluster (%s); using one node",
            CLUSTER_ENV,
            error,
        )
        return False
    finally:
        probe.close()
    return bool(info.get("cluster_enabled"))


def connect(
    url: str,
    *,
    cluster: bool | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    client_name: str | None = None,
) -> Any:
    """An asyncio client for `redis://` or `rediss://` (TLS) URLs, with the
    user and password in the URL (ElastiCache AUTH or an RBAC user).

    `cluster`: None decides by `REDIS_CLUSTER` (see `cluster_mode`). The
    cluster client follows MOVED and ASK itself and retries a command after
    TRYAGAIN / CLUSTERDOWN; what still fails is in REDIS_UNAVAILABLE. On one
    node, the pool holds at most `max_connections` and waits up to
    `pool_timeout` s for a free one; a cluster client keeps up to
    `max_connections` per node.

    Responses stay bytes: stream entries and digests are binary-safe that way.
    `client_name` (CLIENT SETNAME) tells the pools apart in CLIENT LIST.
    """
    if cluster is None:
        cluster = cluster_mode(url)
    if cluster:
        # Retries on timeouts are the cluster client's own (it retries a
        # command after a connection error or timeout, refreshing the slots).
        return RedisCluster.from_url(
            url, max_connections=max_connections, client_name=client_name, **_OPTIONS
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        retry_on_timeout=True,
        client_name=client_name,
        **_OPTIONS,
    )
    return aioredis.Redis.from_pool(pool)


def as_text(value: object) -> str:
    """A Redis reply (bytes, as this client returns them) as text; nil as ""."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


@contextlib.contextmanager
def unavailable_when_redis_is(what: str) -> Iterator[None]:
    """Turns "Redis cannot answer now" into Unavailable (HTTP 503, retry later)
    naming `what` depends on it; other Redis errors are bugs and pass through.

        with unavailable_when_redis_is("the change log"):
            await redis.xadd(...)
    """
    try:
        yield
    except REDIS_UNAVAILABLE as error:
        log.warning("%s: Redis unavailable: %s", what, error)
        raise Unavailable(
            f"{what}: Redis is unavailable ({type(error).__name__}); retry later"
        ) from error
