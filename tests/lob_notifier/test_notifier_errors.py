"""Bad requests answer INVALID_ARGUMENT naming the field; a lost Redis answers UNAVAILABLE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from notifier_events import make_event

from devtools.local_grpc import start_server
from devtools.processes import free_port
from profilesync.v1 import notifier_pb2, notifier_pb2_grpc
from services.common.redis_client import connect
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.servicer import LobNotifierServicer, binding

BAD_CURSORS = ["not-a-cursor", "12", "1-2-3", "99999999999999999999999-0", "1-18446744073709551616"]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_list_with_a_malformed_cursor_names_after_cursor(
    notifier: notifier_pb2_grpc.LobNotifierStub, cursor: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notifier.ListChanges(notifier_pb2.ListChangesRequest(after_cursor=cursor))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "afterCursor" in (caught.value.details() or "")


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_stream_with_a_malformed_cursor_names_after_cursor(
    notifier: notifier_pb2_grpc.LobNotifierStub, cursor: str
) -> None:
    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest(after_cursor=cursor))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(call.read(), timeout=5)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "afterCursor" in (caught.value.details() or "")


async def test_the_largest_cursor_is_accepted(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    cursor = "18446744073709551615-18446744073709551615"

    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest(after_cursor=cursor))

    assert list(page.events) == []
    assert page.next_cursor == cursor


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (notifier_pb2.ListChangesRequest(page_size=1001), "pageSize"),
        (notifier_pb2.ListChangesRequest(page_size=-1), "pageSize"),
        (notifier_pb2.ListChangesRequest(wait_seconds=61), "waitSeconds"),
    ],
)
async def test_list_limits_are_enforced(
    notifier: notifier_pb2_grpc.LobNotifierStub,
    request_: notifier_pb2.ListChangesRequest,
    field: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notifier.ListChanges(request_)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([], "events"),
        ([notifier_pb2.ChangeEvent(user_id="u")], "events[0].eventId"),
        ([notifier_pb2.ChangeEvent(event_id="e")], "events[0].userId"),
        ([make_event(n) for n in range(1001)], "events"),
    ],
)
async def test_publish_limits_are_enforced(
    notifier: notifier_pb2_grpc.LobNotifierStub,
    events: list[notifier_pb2.ChangeEvent],
    field: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notifier.Publish(notifier_pb2.PublishRequest(events=events))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(field)


@pytest.fixture
async def notifier_without_redis() -> AsyncIterator[notifier_pb2_grpc.LobNotifierStub]:
    # Nothing listens on this port: every Redis call fails to connect.
    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    servicer = LobNotifierServicer(ChangeLog(client, "test:changes:unreachable"))
    server, port = await start_server(binding(servicer), shutdown_grace_seconds=0.5)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield notifier_pb2_grpc.LobNotifierStub(channel)
    finally:
        await channel.close()
        await server.stop(None)
        await client.aclose()


async def test_unreachable_redis_answers_unavailable(
    notifier_without_redis: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    calls = [
        notifier_without_redis.Publish(notifier_pb2.PublishRequest(events=[make_event(1)])),
        notifier_without_redis.ListChanges(notifier_pb2.ListChangesRequest()),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call, timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Redis" in (caught.value.details() or "")

    stream = notifier_without_redis.StreamChanges(notifier_pb2.StreamChangesRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(stream.read(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
