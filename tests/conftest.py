"""Fixtures shared by the whole suite: real servers on loopback, stopped by pid."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from services.devstack.redis_server import start_redis

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for the whole session (tests use their own keys)."""
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture
async def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    """An asyncio client on a database flushed before the test."""
    from services.common.redis_client import connect

    client = connect(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()
