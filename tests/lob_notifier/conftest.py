"""The notifier served in-process on loopback, over a real Redis, one stream per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from profilesync.v1 import notifier_pb2_grpc
from services.common.config import ServerSettings
from services.common.redis_client import connect
from services.common.server import create_server
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.servicer import LobNotifierServicer, binding


@pytest.fixture
async def change_log(redis_url: str) -> AsyncIterator[ChangeLog]:
    client = connect(redis_url)
    log = ChangeLog(
        client, f"test:changes:{uuid.uuid4().hex}", max_events=10_000, dedupe_ttl_seconds=600
    )
    try:
        yield log
    finally:
        keys = [key async for key in client.scan_iter(match=f"*{log.stream_key}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def notifier(change_log: ChangeLog) -> AsyncIterator[notifier_pb2_grpc.LobNotifierStub]:
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        metrics_port=None,
        ready_file=None,
        shutdown_grace_seconds=0.5,
        log_level="INFO",
    )
    server, port, _ = await create_server(settings, [binding(LobNotifierServicer(change_log))])
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield notifier_pb2_grpc.LobNotifierStub(channel)
    finally:
        await channel.close()
        await server.stop(None)
