"""Fixtures of the differ tests: the harness (scripted extender, real notifier,
real Redis), and an Entra authority for `python -m services.snapshot_differ`
processes, which fetch the app's token before calling the other services."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from harness import DifferHarness

from devtools.devstack.emulator import running_emulator


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Every differ test runs on one Redis node and on a three-primary cluster:
    the same code must behave the same on both."""
    return any_redis_url


@pytest.fixture
async def harness(
    redis_client: aioredis.Redis, redis_url: str, tmp_path: pathlib.Path
) -> AsyncIterator[DifferHarness]:
    async with DifferHarness(redis_client, redis_url, tmp_path / "store") as h:
        yield h


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The Graph emulator, here only as the token authority; its ready info."""
    with running_emulator(tmp_path_factory.mktemp("authority")) as ready:
        yield ready
