"""Fixtures shared by the whole suite: real servers on loopback, stopped by pid."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from devtools.devstack.redis_cluster import start_redis_cluster
from devtools.devstack.redis_server import start_redis

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def single_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for the whole session (tests use their own keys)."""
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def redis_url(single_redis_url: str) -> str:
    """The Redis of a test; suites that also run on a cluster override it with `any_redis_url`."""
    return single_redis_url


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Redis Cluster of three primaries (cluster mode enabled, like
    ElastiCache Serverless), for the whole session."""
    cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(params=["single-node", "cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """A single Redis node, then the three-primary cluster: a suite that
    overrides `redis_url` with this runs every test on both."""
    name = "redis_cluster_url" if request.param == "cluster" else "single_redis_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def redis_client(redis_url: str):  # type: ignore[no-untyped-def]
    """An asyncio client on a database flushed before the test (a cluster
    client where `redis_url` is a cluster: FLUSHDB then empties every primary)."""
    from services.common.redis_client import connect

    client = connect(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()
