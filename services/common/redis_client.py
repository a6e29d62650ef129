"""Connecting to Redis (or ElastiCache) from a URL.

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
from collections.abc import Iterator

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from services.common.errors import Unavailable

__all__ = ["as_bytes", "as_text", "connect", "unavailable_when_redis_is"]

log = logging.getLogger(__name__)


# Connections one client may open; callers beyond it wait (see POOL_TIMEOUT_SECONDS).
DEFAULT_MAX_CONNECTIONS = 100
# How long a call waits for a free connection before it is answered UNAVAILABLE.
# Long enough to ride out a burst, short enough that a caller learns of an
# overload well inside its own deadline.
POOL_TIMEOUT_SECONDS = 5.0


def connect(
    url: str,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    client_name: str | None = None,
) -> aioredis.Redis:
    """An asyncio client for `redis://` or `rediss://` (TLS) URLs, with a pool of
    at most `max_connections` that waits up to `pool_timeout` s for a free one.

    Responses stay bytes: stream entries and digests are binary-safe that way.
    `client_name` (CLIENT SETNAME) tells the pools apart in CLIENT LIST.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=15,
        retry_on_timeout=True,
        client_name=client_name,
    )
    return aioredis.Redis.from_pool(pool)


def as_text(value: object) -> str:
    """A Redis reply (bytes, as this client returns them) as text."""
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
    except (
        redis_errors.ConnectionError,  # includes BusyLoadingError (a restarting replica)
        redis_errors.TimeoutError,
        redis_errors.ReadOnlyError,  # a failover in progress
        redis_errors.OutOfMemoryError,
    ) as error:
        log.warning("%s: Redis unavailable: %s", what, error)
        raise Unavailable(
            f"{what}: Redis is unavailable ({type(error).__name__}); retry later"
        ) from error
