"""StreamChanges: the backlog after a cursor, then live events, until the client cancels."""

from __future__ import annotations

import asyncio

from notifier_events import make_event

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc


async def _next(call: object) -> notifier_pb2.ChangeEvent:
    event = await asyncio.wait_for(call.read(), timeout=5)  # type: ignore[attr-defined]
    assert isinstance(event, notifier_pb2.ChangeEvent)
    return event


async def test_stream_from_a_cursor_sends_the_backlog_then_live_events(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1), make_event(2)]))
    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())
    after_first = page.events[0].cursor

    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest(after_cursor=after_first))
    try:
        backlog = await _next(call)
        assert backlog.event_id == "event-00002"
        assert backlog.cursor == page.events[1].cursor

        await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(3)]))
        live = await _next(call)
        assert live.event_id == "event-00003"
        assert live.cursor > backlog.cursor
    finally:
        call.cancel()


async def test_stream_without_a_cursor_starts_from_now(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))

    call = notifier.StreamChanges(notifier_pb2.StreamChangesRequest())
    try:
        # Give the server time to pin "now" before the next event exists.
        await asyncio.sleep(0.3)
        await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(2), make_event(3)]))
        assert (await _next(call)).event_id == "event-00002"
        assert (await _next(call)).event_id == "event-00003"
    finally:
        call.cancel()


async def test_a_cancelled_stream_leaves_the_server_serving(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    calls = [notifier.StreamChanges(notifier_pb2.StreamChangesRequest()) for _ in range(5)]
    await asyncio.sleep(0.3)
    for call in calls:
        call.cancel()
    await asyncio.sleep(0.1)

    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())

    assert [e.event_id for e in page.events] == ["event-00001"]
