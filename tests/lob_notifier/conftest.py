"""The notifier served in-process on loopback, over a real Redis, one stream per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from notifier_harness import Served, running_notifier

from profilesync.v1 import notifier_pb2_grpc
from services.common.redis_client import connect
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.subscribers import SubscriberStore


@pytest.fixture
def stream_key() -> str:
    return f"test:changes:{uuid.uuid4().hex}"


@pytest.fixture
async def change_log(redis_url: str, stream_key: str) -> AsyncIterator[ChangeLog]:
    client = connect(redis_url)
    log = ChangeLog(client, stream_key, max_events=10_000, dedupe_ttl_seconds=600)
    try:
        yield log
    finally:
        keys = [key async for key in client.scan_iter(match=f"*{stream_key}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def store(change_log: ChangeLog) -> SubscriberStore:
    return SubscriberStore(change_log.redis, change_log.keys)


@pytest.fixture
async def served(change_log: ChangeLog) -> AsyncIterator[Served]:
    async with running_notifier(change_log, max_subscribers=5) as running:
        yield running


@pytest.fixture
def notifier(served: Served) -> Iterator[notifier_pb2_grpc.LobNotifierStub]:
    yield served.stub
