"""Connecting to Redis (or ElastiCache) from a URL."""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["connect"]


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
