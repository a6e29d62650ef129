"""Open streams and long-polls share one Redis reader per replica, and are capped.

Hundreds of waiting calls cost a bounded number of Redis connections (counted with CLIENT
LIST, by the pools' client names), every one of them still gets each event, and a caller over
its cap is refused at once with RESOURCE_EXHAUSTED and a `retry-after` trailer while the
replica keeps answering everything else.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from notifier_events import eventually, make_event
from notifier_harness import Served, running_notifier

from profilesync.v1 import notifier_pb2
from services.common.redis_client import connect
from services.lob_notifier.admission import RETRY_AFTER_SECONDS, Admission
from services.lob_notifier.change_log import ChangeLog

STREAMS = 300
READER_CONNECTIONS = 4


async def connections_named(redis: aioredis.Redis, name: str) -> int:
    clients = await redis.client_list()
    return sum(1 for client in clients if client.get("name") == name)


@pytest.fixture
async def small_pools(redis_url: str, stream_key: str) -> AsyncIterator[tuple[ChangeLog, str]]:
    """A change log whose readers have a pool of 4 and whose publisher has its own."""
    name = f"readers-{uuid.uuid4().hex[:8]}"
    readers = connect(redis_url, max_connections=READER_CONNECTIONS, client_name=name)
    publisher = connect(redis_url, max_connections=2, client_name=f"{name}-publish")
    log = ChangeLog(
        readers, stream_key, max_events=10_000, dedupe_ttl_seconds=600, publisher=publisher
    )
    try:
        yield log, name
    finally:
        await log.aclose()
        await readers.delete(
            *[k async for k in readers.scan_iter(match=f"*{stream_key}*")] or ["x"]
        )
        await readers.aclose()
        await publisher.aclose()


async def first_message(call: Any) -> notifier_pb2.ChangeEvent:
    message = await asyncio.wait_for(call.read(), timeout=60)
    assert isinstance(message, notifier_pb2.ChangeEvent)
    return message


async def next_event(call: Any) -> notifier_pb2.ChangeEvent:
    while True:
        message = await first_message(call)
        if not message.heartbeat:
            return message


async def test_hundreds_of_streams_share_a_bounded_number_of_redis_connections(
    small_pools: tuple[ChangeLog, str], redis_client: aioredis.Redis
) -> None:
    log, name = small_pools
    async with running_notifier(log) as served:
        calls = [
            served.stub.StreamChanges(notifier_pb2.StreamChangesRequest()) for _ in range(STREAMS)
        ]
        try:
            # Every stream is open: each has had its first heartbeat ("from now").
            heads = await asyncio.gather(*(first_message(call) for call in calls))
            assert all(head.heartbeat for head in heads)

            # Meanwhile a plain read and a long-poll are served, and a publish goes through.
            page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest())
            assert list(page.events) == []
            polling = asyncio.ensure_future(
                served.stub.ListChanges(
                    notifier_pb2.ListChangesRequest(after_cursor=heads[0].cursor, wait_seconds=30)
                )
            )
            published = await served.stub.Publish(
                notifier_pb2.PublishRequest(events=[make_event(1)])
            )
            assert published.accepted == 1

            # Every stream gets the event, once.
            received = await asyncio.gather(*(next_event(call) for call in calls))
            assert {event.event_id for event in received} == {"event-00001"}
            assert [e.event_id for e in (await polling).events] == ["event-00001"]

            # However many wait, the readers never open more than their pool.
            readers = await connections_named(redis_client, name)
            assert 1 <= readers <= READER_CONNECTIONS
            assert await connections_named(redis_client, f"{name}-publish") >= 1
        finally:
            for call in calls:
                call.cancel()


async def test_many_long_polls_are_answered_by_one_publish(
    small_pools: tuple[ChangeLog, str], redis_client: aioredis.Redis
) -> None:
    log, name = small_pools
    async with running_notifier(log) as served:
        start = (await served.stub.ListChanges(notifier_pb2.ListChangesRequest())).last_cursor
        cursor = start or "0-0"
        polls = [
            asyncio.ensure_future(
                served.stub.ListChanges(
                    notifier_pb2.ListChangesRequest(after_cursor=cursor, wait_seconds=30)
                )
            )
            for _ in range(200)
        ]

        async def all_waiting() -> bool:
            return log.waiting >= 200

        await eventually(all_waiting, what="200 long-polls waiting")
        assert await connections_named(redis_client, name) <= READER_CONNECTIONS
        await served.stub.Publish(notifier_pb2.PublishRequest(events=[make_event(7)]))

        answers = await asyncio.gather(*polls)
        assert all([e.event_id for e in answer.events] == ["event-00007"] for answer in answers)


@pytest.fixture
async def capped(change_log: ChangeLog) -> AsyncIterator[Served]:
    admission = Admission(max_waiting=5, max_waiting_per_caller=3)
    # A stream the client closed leaves its place at once, or (when grpc learns of the
    # close only from a failed write) at its next heartbeat: 1 s here.
    async with running_notifier(change_log, admission=admission, heartbeat_seconds=1) as served:
        yield served


def retry_after(error: grpc.aio.AioRpcError) -> str | None:
    for key, value in error.trailing_metadata() or ():
        if key == "retry-after":
            return str(value)
    return None


async def test_a_caller_over_its_cap_is_refused_with_retry_after(capped: Served) -> None:
    open_calls = [capped.stub.StreamChanges(notifier_pb2.StreamChangesRequest()) for _ in range(3)]
    try:
        await asyncio.gather(*(first_message(call) for call in open_calls))

        extra = capped.stub.StreamChanges(notifier_pb2.StreamChangesRequest())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await first_message(extra)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "NOTIFIER_MAX_WAITING_CALLS_PER_CALLER" in (caught.value.details() or "")
        assert retry_after(caught.value) == str(RETRY_AFTER_SECONDS)

        # A long-poll counts too; a plain read does not, and is served.
        with pytest.raises(grpc.aio.AioRpcError) as polled:
            await capped.stub.ListChanges(notifier_pb2.ListChangesRequest(wait_seconds=5))
        assert polled.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        page = await capped.stub.ListChanges(notifier_pb2.ListChangesRequest())
        assert list(page.events) == []
        await capped.stub.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    finally:
        for call in open_calls:
            call.cancel()

    # Once its streams close, the caller is admitted again.
    async def admitted_again() -> bool:
        return capped.servicer._admission.waiting == 0

    await eventually(admitted_again, what="the closed streams to be counted out")
    again = capped.stub.StreamChanges(notifier_pb2.StreamChangesRequest())
    try:
        assert (await first_message(again)).heartbeat
    finally:
        again.cancel()


async def test_the_replica_cap_counts_every_caller() -> None:
    admission = Admission(max_waiting=2, max_waiting_per_caller=2)
    with admission.admit("app-a", "StreamChanges"), admission.admit("app-b", "StreamChanges"):
        with pytest.raises(Exception) as caught, admission.admit("app-c", "StreamChanges"):
            pass
        assert "NOTIFIER_MAX_WAITING_CALLS" in str(caught.value)
        assert getattr(caught.value, "retry_after_seconds", None) == RETRY_AFTER_SECONDS
    with admission.admit("app-c", "StreamChanges"):
        assert admission.waiting == 1
