"""StreamChanges: the backlog after a cursor, then live events, until the client cancels."""

from __future__ import annotations

import asyncio
from typing import Any

from notifier_events import make_event

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc


async def _next(call: Any) -> notifier_pb2.ChangeEvent:
    event = await asyncio.wait_for(call.read(), timeout=30)
    assert isinstance(event, notifier_pb2.ChangeEvent)
    return event


async def _next_event(call: Any) -> notifier_pb2.ChangeEvent:
    """The next message that is not a heartbeat."""
    while True:
        event = await _next(call)
        if not event.heartbeat:
            return event


async def test_stream_from_a_cursor_sends_the_backlog_then_live_events(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1), make_event(2)]))
    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())
    after_first = page.events[0].cursor

    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest(after_cursor=after_first))
    try:
        backlog = await _next(call)  # events first: no heartbeat while there is a backlog
        assert backlog.event_id == "event-00002" and not backlog.heartbeat
        assert backlog.cursor == page.events[1].cursor

        await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(3)]))
        live = await _next_event(call)
        assert live.event_id == "event-00003"
        assert live.cursor > backlog.cursor
    finally:
        call.cancel()


async def test_stream_without_a_cursor_starts_from_now(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    published = await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))

    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest())
    try:
        # The first heartbeat says which position "now" was pinned to.
        start = await _next(call)
        assert start.heartbeat and start.cursor == published.last_cursor and not start.event_id
        await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(2), make_event(3)]))
        assert (await _next_event(call)).event_id == "event-00002"
        assert (await _next_event(call)).event_id == "event-00003"
    finally:
        call.cancel()


async def test_a_cancelled_stream_leaves_the_server_serving(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    calls = [notifier.StreamChanges(notifier_pb2.StreamChangesRequest()) for _ in range(5)]
    for call in calls:
        assert (await _next(call)).heartbeat  # each stream is open and waiting
    for call in calls:
        call.cancel()

    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())

    assert [e.event_id for e in page.events] == ["event-00001"]
