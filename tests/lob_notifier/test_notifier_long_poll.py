"""ListChanges with wait_seconds: waits only while there is nothing to return."""

from __future__ import annotations

import asyncio
import time

from notifier_events import make_event

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc


async def test_long_poll_returns_as_soon_as_an_event_is_published(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    first = await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    started = time.monotonic()
    poll = asyncio.ensure_future(
        notifier.ListChanges(
            notifier_pb2.ListChangesRequest(after_cursor=first.last_cursor, wait_seconds=20)
        )
    )
    await asyncio.sleep(0.3)
    assert not poll.done()

    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(2)]))
    page = await asyncio.wait_for(poll, timeout=5)

    assert [e.event_id for e in page.events] == ["event-00002"]
    assert page.next_cursor == page.events[0].cursor
    assert time.monotonic() - started < 5


async def test_long_poll_on_an_empty_log_wakes_on_the_first_event(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    poll = asyncio.ensure_future(
        notifier.ListChanges(notifier_pb2.ListChangesRequest(wait_seconds=20))
    )
    await asyncio.sleep(0.3)

    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    page = await asyncio.wait_for(poll, timeout=5)

    assert [e.event_id for e in page.events] == ["event-00001"]


async def test_long_poll_returns_at_once_when_events_are_waiting(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    started = time.monotonic()

    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest(wait_seconds=30))

    assert len(page.events) == 1
    assert time.monotonic() - started < 2


async def test_long_poll_returns_empty_after_the_wait_with_the_same_cursor(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    published = await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(1)]))
    started = time.monotonic()

    page = await notifier.ListChanges(
        notifier_pb2.ListChangesRequest(after_cursor=published.last_cursor, wait_seconds=1)
    )

    elapsed = time.monotonic() - started
    assert list(page.events) == []
    assert page.next_cursor == published.last_cursor
    assert 0.9 <= elapsed < 3
