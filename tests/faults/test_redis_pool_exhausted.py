"""Every Redis connection of a client is busy: a call waits briefly for one instead of failing
at once, and when none frees in time it is answered UNAVAILABLE naming what needed Redis
(never MaxConnectionsError as a 500). The pool is redis-py's asyncio BlockingConnectionPool
(https://github.com/redis/redis-py/blob/master/redis/asyncio/connection.py): "rather than
raising a MaxConnectionsError ... it blocks the current Task for a specified number of
seconds until a connection becomes available", then raises ConnectionError."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.common.errors import Unavailable
from services.common.redis_client import connect, unavailable_when_redis_is


async def test_a_call_waits_for_a_busy_pool_then_succeeds(redis_url: str) -> None:
    redis = connect(redis_url, max_connections=1, pool_timeout=10)
    try:
        # BLPOP on an empty list holds the only connection for a second.
        holding = asyncio.ensure_future(redis.blpop(["pool-test:nothing"], timeout=1))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        assert await redis.ping()
        waited = time.monotonic() - started
        await holding
    finally:
        await redis.aclose()
    assert waited >= 0.5  # it waited for the held connection rather than failing


async def test_a_pool_busy_past_its_timeout_answers_unavailable(redis_url: str) -> None:
    redis = connect(redis_url, max_connections=1, pool_timeout=0.3)
    try:
        holding = asyncio.ensure_future(redis.blpop(["pool-test:nothing"], timeout=2))
        await asyncio.sleep(0.1)
        with pytest.raises(Unavailable) as caught, unavailable_when_redis_is("the change log"):
            await redis.ping()
        await holding
    finally:
        await redis.aclose()
    assert str(caught.value).startswith("the change log: Redis is unavailable")
