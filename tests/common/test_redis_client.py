"""Which Redis client the services get: a cluster client where Redis runs in
cluster mode (ElastiCache Serverless, cluster mode enabled), detected or
declared with REDIS_CLUSTER; the plain client otherwise. And what "Redis is
unavailable" means, whichever client met it."""

from __future__ import annotations

import pathlib
import re

import grpc
import pytest
import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from devtools.devstack.stack import Stack, StackOptions
from devtools.processes import free_port
from services.common.errors import Unavailable
from services.common.redis_client import (
    REDIS_UNAVAILABLE,
    cluster_mode,
    connect,
    unavailable_when_redis_is,
)
from services.common.settings import ConfigError


def test_auto_asks_redis_whether_it_is_a_cluster(
    single_redis_url: str, redis_cluster_url: str
) -> None:
    assert cluster_mode(redis_cluster_url, "auto") is True
    assert cluster_mode(single_redis_url, "auto") is False
    # Unset means auto.
    assert cluster_mode(redis_cluster_url, "") is True


def test_a_declared_mode_wins_without_asking() -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    assert cluster_mode(nowhere, "true") is True
    assert cluster_mode(nowhere, "FALSE") is False


def test_an_unreachable_redis_under_auto_is_taken_as_one_node() -> None:
    """Its errors then surface at first use, as before cluster support."""
    assert cluster_mode(f"redis://127.0.0.1:{free_port()}/0", "auto") is False


def test_an_unknown_mode_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="REDIS_CLUSTER must be true, false or auto, got 'yes'"):
        cluster_mode("redis://127.0.0.1:6379/0", "yes")


async def test_connect_gives_the_cluster_client_on_a_cluster(
    redis_cluster_url: str, single_redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_CLUSTER", raising=False)
    on_cluster = connect(redis_cluster_url)
    on_node = connect(single_redis_url)
    try:
        assert isinstance(on_cluster, RedisCluster)
        assert isinstance(on_node, aioredis.Redis)
        # Keys of one hash tag take part in one transaction on the cluster.
        async with on_cluster.pipeline(transaction=True) as tx:
            tx.set("test:{tag}:a", "1")
            tx.incr("test:{tag}:b")
            assert await tx.execute() == [True, 1]
    finally:
        await on_cluster.aclose()
        await on_node.aclose()


@pytest.mark.parametrize(
    "error",
    [
        redis_errors.TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
        redis_errors.ClusterDownError("CLUSTERDOWN The cluster is down"),
        redis_errors.MasterDownError("MASTERDOWN Link with MASTER is down"),
        redis_errors.ConnectionError("Error 111 connecting to 127.0.0.1:7000"),
        redis_errors.ReadOnlyError("READONLY You can't write against a read only replica."),
    ],
)
def test_failover_and_resharding_errors_read_as_unavailable(error: Exception) -> None:
    assert isinstance(error, REDIS_UNAVAILABLE)
    with pytest.raises(Unavailable) as caught, unavailable_when_redis_is("the change log"):
        raise error
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert "the change log: Redis is unavailable" in str(caught.value)


def test_a_bug_is_not_mistaken_for_unavailability() -> None:
    with (
        pytest.raises(redis_errors.ResponseError),
        unavailable_when_redis_is("the change log"),
    ):
        raise redis_errors.ResponseError("WRONGTYPE Operation against a key")


def test_a_stack_given_a_redis_url_uses_it_and_starts_none(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:7000/0")
    stack = Stack(StackOptions(state_dir=tmp_path))
    assert stack.options.redis_url == "redis://127.0.0.1:7000/0"
    with pytest.raises(RuntimeError, match=re.escape("external Redis redis://127.0.0.1:7000/0")):
        stack.kill_redis()
    monkeypatch.delenv("REDIS_URL")
    assert StackOptions(state_dir=tmp_path).redis_url is None
