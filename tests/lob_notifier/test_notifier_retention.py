"""Retention by size and age, and the documented error for a cursor it overtook."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from notifier_events import eventually, make_event
from notifier_harness import running_notifier

from profilesync.v1 import notifier_pb2
from services.lob_notifier.change_log import ChangeLog, LogGap
from services.lob_notifier.cursors import cursor_key


def small_log(change_log: ChangeLog, **limits: int) -> ChangeLog:
    """Another view of the test's stream with tight retention."""
    return ChangeLog(change_log.redis, change_log.stream_key, **limits)


async def publish_range(log: ChangeLog, start: int, stop: int) -> None:
    for first in range(start, stop, 50):
        await log.publish([make_event(n) for n in range(first, min(first + 50, stop))])


async def test_an_expired_cursor_gets_out_of_range_naming_the_bootstrap_route(
    change_log: ChangeLog,
) -> None:
    log = small_log(change_log, max_events=10)
    await log.publish([make_event(0)])
    [first] = await log.read(None, 1, 0)
    await publish_range(log, 1, 500)

    async with running_notifier(log) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.ListChanges(
                notifier_pb2.ListChangesRequest(after_cursor=first.cursor)
            )

        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
        message = caught.value.details() or ""
        assert message.startswith(f"afterCursor: events after {first.cursor} are no longer")
        assert "retention removed them" in message
        assert "the newest 10 events" in message
        assert "GET /v1/profiles" in message and "changesCursor" in message

        stream = served.stub.StreamChanges(
            notifier_pb2.StreamChangesRequest(after_cursor=first.cursor)
        )
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            await asyncio.wait_for(stream.read(), timeout=30)
        assert streamed.value.code() == grpc.StatusCode.OUT_OF_RANGE


async def test_the_log_keeps_about_max_events_and_the_newest_are_readable(
    change_log: ChangeLog,
) -> None:
    log = small_log(change_log, max_events=10)
    await publish_range(log, 0, 500)

    length = await log.redis.xlen(log.stream_key)
    # MAXLEN ~ trims whole stream nodes (100 entries by default), never below the bound.
    assert 10 <= length <= 110
    events = await log.read(None, count=1000, block_ms=0)
    assert events[-1].event_id == "event-00499"


async def test_a_cursor_at_the_last_trimmed_event_is_not_expired(change_log: ChangeLog) -> None:
    # Publish with room to spare and note every cursor, then trim with a tight log.
    await publish_range(change_log, 0, 150)
    cursors = [e.cursor for e in await change_log.read(None, 1000, 0)]
    await small_log(change_log, max_events=10).publish([make_event(150)])
    oldest = (await change_log.read(None, 1, 0))[0]
    kept_from = cursors.index(oldest.cursor)
    assert kept_from > 1  # something was trimmed

    # The consumer that read up to the last trimmed event missed nothing ...
    events = await change_log.read(cursors[kept_from - 1], 1000, 0)
    assert events[0].cursor == oldest.cursor
    # ... one event behind that, it did.
    with pytest.raises(LogGap):
        await change_log.read(cursors[kept_from - 2], 1000, 0)


async def test_age_retention_empties_an_idle_log_without_expiring_caught_up_readers(
    change_log: ChangeLog,
) -> None:
    log = small_log(change_log, max_events=1000, max_age_seconds=1)
    await log.publish([make_event(n) for n in range(3)])
    events = await log.read(None, 10, 0)
    caught_up, behind = events[-1].cursor, events[0].cursor

    async def emptied() -> bool:
        return await log.trim() == 0

    await eventually(emptied, what="age retention to empty the log")

    after_caught_up = notifier_pb2.ListChangesRequest(after_cursor=caught_up)
    async with running_notifier(log) as served:
        # Nothing follows the caught-up reader: an empty page, not an error.
        page = await served.stub.ListChanges(after_caught_up)
        assert list(page.events) == [] and page.next_cursor == caught_up
        # The reader that had not seen events 1 and 2 is told so, though the log is empty.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.ListChanges(notifier_pb2.ListChangesRequest(after_cursor=behind))
        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE

        await log.publish([make_event(3)])
        page = await served.stub.ListChanges(after_caught_up)
        assert [e.event_id for e in page.events] == ["event-00003"]


async def test_a_lost_log_expires_the_cursors_into_it(change_log: ChangeLog) -> None:
    published = await change_log.publish([make_event(1), make_event(2)])
    # Redis lost everything (a restart without persistence, a failover without replica).
    await change_log.redis.delete(change_log.stream_key, change_log.keys.seq)
    # A restart takes far longer than a millisecond, so the new log's ids (taken
    # from Redis's clock) come after the old cursor; here, wait for that clock.
    old_ms = cursor_key(published.last_cursor)[0]

    async def clock_passed() -> bool:
        seconds, micros = await change_log.redis.time()
        return seconds * 1000 + micros // 1000 > old_ms

    await eventually(clock_passed, what="Redis's clock to pass the old cursor")
    await change_log.publish([make_event(3)])

    async with running_notifier(change_log) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.ListChanges(
                notifier_pb2.ListChangesRequest(after_cursor=published.last_cursor)
            )
        assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
        assert "emptied and restarted" in (caught.value.details() or "")
        # Reading from the start of what is there still works.
        page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest())
        assert [e.event_id for e in page.events] == ["event-00003"]


async def test_duplicates_are_dropped_after_their_originals_were_trimmed(
    change_log: ChangeLog,
) -> None:
    log = small_log(change_log, max_events=10)
    await publish_range(log, 0, 300)

    again = await log.publish([make_event(n) for n in range(0, 20)])

    assert (again.accepted, again.duplicates) == (0, 20)


async def test_event_ids_are_remembered_as_long_as_the_age_limit_by_default(
    change_log: ChangeLog,
) -> None:
    log = small_log(change_log, max_events=100, max_age_seconds=3600)
    await log.publish([make_event(1)])

    ttl = await log.redis.ttl(log.dedupe_key("event-00001"))

    assert 3500 < ttl <= 3600


async def test_list_changes_reports_the_newest_cursor_for_resynchronising(
    change_log: ChangeLog,
) -> None:
    published = await change_log.publish([make_event(n) for n in range(5)])

    async with running_notifier(change_log) as served:
        page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(page_size=1))

    assert page.last_cursor == published.last_cursor != page.next_cursor
