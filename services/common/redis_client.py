"""Connecting to Redis (or ElastiCache) from a URL."""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["as_bytes", "as_text", "connect"]


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
