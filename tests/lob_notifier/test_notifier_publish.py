"""Publishing and reading back: order, cursors, duplicates, paging, retention."""

from __future__ import annotations

from notifier_events import make_event

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc
from services.lob_notifier.change_log import ChangeLog


def _cursor_key(cursor: str) -> tuple[int, int]:
    ms, seq = cursor.split("-")
    return int(ms), int(seq)


async def test_publish_then_list_returns_events_in_order_with_cursors(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    events = [make_event(n) for n in range(3)]
    published = await notifier.Publish(notifier_pb2.PublishRequest(events=events))
    assert (published.accepted, published.duplicates) == (3, 0)

    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())

    assert [e.event_id for e in page.events] == ["event-00000", "event-00001", "event-00002"]
    cursors = [e.cursor for e in page.events]
    assert all(cursors) and cursors == sorted(cursors, key=_cursor_key)
    assert len(set(cursors)) == 3
    assert page.next_cursor == cursors[-1] == published.last_cursor
    # The notifier stamps the detection time when the publisher left it out.
    assert all(e.HasField("detect_time") and e.detect_time.seconds > 0 for e in page.events)
    assert page.events[0].user_id == "user-0"
    assert list(page.events[0].changed_fields) == ["skills"]


async def test_detect_time_given_by_the_publisher_is_kept(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    event = make_event(1)
    event.detect_time.FromSeconds(1_700_000_000)
    await notifier.Publish(notifier_pb2.PublishRequest(events=[event]))

    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())

    assert page.events[0].detect_time.seconds == 1_700_000_000


async def test_republishing_the_same_event_ids_adds_nothing(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    first = await notifier.Publish(
        notifier_pb2.PublishRequest(events=[make_event(n) for n in range(3)])
    )

    # A rerun after a crash republishes the same ids, one of them new.
    rerun = await notifier.Publish(
        notifier_pb2.PublishRequest(events=[make_event(n) for n in range(4)])
    )

    assert (rerun.accepted, rerun.duplicates) == (1, 3)
    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())
    assert [e.event_id for e in page.events] == [f"event-{n:05d}" for n in range(4)]
    assert rerun.last_cursor == page.events[-1].cursor != first.last_cursor

    again = await notifier.Publish(
        notifier_pb2.PublishRequest(events=[make_event(n) for n in range(4)])
    )
    assert (again.accepted, again.duplicates) == (0, 4)
    assert again.last_cursor == rerun.last_cursor


async def test_a_repeated_id_within_one_batch_is_kept_once(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    events = [make_event(1), make_event(2), make_event(1)]

    published = await notifier.Publish(notifier_pb2.PublishRequest(events=events))

    assert (published.accepted, published.duplicates) == (2, 1)


async def test_a_cursor_sent_by_the_publisher_is_replaced(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    event = make_event(1)
    event.cursor = "1-1"
    published = await notifier.Publish(notifier_pb2.PublishRequest(events=[event]))

    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest())

    assert page.events[0].cursor == published.last_cursor != "1-1"


async def test_paging_with_cursors_sees_each_event_exactly_once(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(n) for n in range(25)]))

    seen: list[str] = []
    sizes: list[int] = []
    cursor = ""
    while True:
        page = await notifier.ListChanges(
            notifier_pb2.ListChangesRequest(after_cursor=cursor, page_size=10)
        )
        if not page.events:
            assert page.next_cursor == cursor
            break
        sizes.append(len(page.events))
        seen.extend(e.event_id for e in page.events)
        cursor = page.next_cursor

    assert sizes == [10, 10, 5]
    assert seen == [f"event-{n:05d}" for n in range(25)]


async def test_page_size_zero_means_one_hundred(
    notifier: notifier_pb2_grpc.LobNotifierStub,
) -> None:
    await notifier.Publish(notifier_pb2.PublishRequest(events=[make_event(n) for n in range(150)]))

    page = await notifier.ListChanges(notifier_pb2.ListChangesRequest(page_size=0))

    assert len(page.events) == 100


async def test_publish_on_an_empty_log_reports_no_cursor(change_log: ChangeLog) -> None:
    result = await change_log.publish([])

    assert (result.accepted, result.duplicates, result.last_cursor) == (0, 0, "")
    assert await change_log.last_cursor() == ""


async def test_dedupe_keys_share_the_stream_hash_slot_and_expire(
    change_log: ChangeLog, redis_url: str
) -> None:
    from services.common.redis_client import connect

    result = await change_log.publish([make_event(7)])

    client = connect(redis_url)
    try:
        key = f"{{{change_log.stream_key}}}:dedupe:event-00007"
        assert change_log.dedupe_key("event-00007") == key
        assert await client.get(key) == result.last_cursor.encode()
        assert 0 < await client.ttl(key) <= 600
        entries = await client.xrange(change_log.stream_key)
        assert entries[0][1][b"event_id"] == b"event-00007"
    finally:
        await client.aclose()
