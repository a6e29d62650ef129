"""Connecting to Redis (or ElastiCache) from a URL."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from services.common.errors import Unavailable

__all__ = ["as_bytes", "as_text", "connect", "unavailable_when_redis_is"]

log = logging.getLogger(__name__)


def connect(url: str) -> aioredis.Redis:
    """An asyncio client for `redis://` or `rediss://` (TLS) URLs.

    Responses stay bytes: stream entries and digests are binary-safe that way.
    """
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=15,
        retry_on_timeout=True,
    )


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
