"""Heartbeats on StreamChanges: while idle, with a cursor to resume from."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from notifier_events import make_event

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc


async def _next(call: Any) -> notifier_pb2.ChangeEvent:
    event = await asyncio.wait_for(call.read(), timeout=30)
    assert isinstance(event, notifier_pb2.ChangeEvent)
    return event


async def test_an_idle_stream_sends_heartbeats_carrying_its_position(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest(heartbeat_seconds=1))
    try:
        first = await _next(call)
        assert first.heartbeat and first.cursor == "0-0"  # an empty log: before everything
        second = await _next(call)  # after a second of quiet
        assert second.heartbeat and second.cursor == first.cursor

        published = await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
        event = await _next(call)
        assert event.event_id == "event-00001" and not event.heartbeat

        after = await _next(call)
        assert after.heartbeat and after.cursor == published.last_cursor
        # A heartbeat is only a position: no event content.
        assert (after.event_id, after.user_id, list(after.changed_fields)) == ("", "", [])
    finally:
        call.cancel()


async def test_resuming_from_a_heartbeat_cursor_misses_nothing(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest())
    position = (await _next(call)).cursor
    call.cancel()

    # Published while the consumer was disconnected.
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(2), make_event(3)]))

    resumed = notifier.StreamChanges(notifier_pb2.StreamChangesRequest(after_cursor=position))
    try:
        assert (await _next(resumed)).event_id == "event-00002"
        assert (await _next(resumed)).event_id == "event-00003"
    finally:
        resumed.cancel()


@pytest.mark.parametrize("seconds", [-1, 301])
async def test_heartbeat_seconds_outside_the_range_is_refused(
    notifier: notifier_pb2_grpc.LobNotifierStub, seconds: int
) -> None:
    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest(heartbeat_seconds=seconds))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(call.read(), timeout=30)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "heartbeatSeconds" in (caught.value.details() or "")


async def test_a_heartbeat_cannot_be_published(notifier: notifier_pb2_grpc.LobNotifierStub) -> None:
    event = make_event(1)
    event.heartbeat = True

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notifier.Publish(notifier_pb2.PublishRequest(events=[event]))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("events[0].heartbeat")
