"""Named subscribers through the API: settings, independent positions, Ack, Seek."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import json_format
from notifier_events import event_ids, make_event
from notifier_harness import Served, running_notifier

from profilesync.v1 import notifier_pb2
from services.lob_notifier.change_log import ChangeLog

SECRET = "a-webhook-secret-of-some-length"
URL = "https://lob.example.com/hooks/profiles"


async def put(served: Served, name: str, **fields: object) -> notifier_pb2.Subscriber:
    return await served.stub.PutSubscriber(notifier_pb2.PutSubscriberRequest(name=name, **fields))


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def publish(served: Served, start: int, stop: int) -> notifier_pb2.PublishResponse:
    events = [make_event(n) for n in range(start, stop)]
    return await served.stub.Publish(notifier_pb2.PublishRequest(events=events))


async def test_a_pull_subscriber_starts_after_the_newest_event(served: Served) -> None:
    published = await publish(served, 0, 3)

    subscriber = await put(served, "reports")

    assert subscriber.name == "reports" and subscriber.url == "" and not subscriber.has_secret
    assert subscriber.source == notifier_pb2.SOURCE_API
    assert subscriber.cursor == published.last_cursor
    assert subscriber.status.state == notifier_pb2.CAUGHT_UP
    assert subscriber.create_time.seconds > 0
    page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="reports"))
    assert list(page.events) == []


async def test_start_at_oldest_reads_what_the_log_holds(served: Served) -> None:
    await publish(served, 0, 3)

    subscriber = await put(served, "warehouse", start_at=notifier_pb2.START_OLDEST)

    assert subscriber.status.state == notifier_pb2.BEHIND
    assert subscriber.status.lag_events == 3 and subscriber.status.lag_seconds >= 0
    page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="warehouse"))
    assert [e.event_id for e in page.events] == event_ids(0, 3)


async def test_pull_subscribers_keep_independent_positions(served: Served) -> None:
    await put(served, "fast")
    await put(served, "slow")
    await publish(served, 0, 10)

    fast = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="fast"))
    await served.stub.Ack(notifier_pb2.AckRequest(name="fast", cursor=fast.next_cursor))
    slow = await served.stub.ListChanges(
        notifier_pb2.ListChangesRequest(subscriber="slow", page_size=4)
    )
    acked = await served.stub.Ack(notifier_pb2.AckRequest(name="slow", cursor=slow.next_cursor))

    assert [e.event_id for e in fast.events] == event_ids(0, 10)
    assert acked.cursor == slow.next_cursor and acked.status.lag_events == 6
    assert acked.status.state == notifier_pb2.BEHIND and acked.status.last_success_time.seconds
    rest = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="slow"))
    assert [e.event_id for e in rest.events] == event_ids(4, 10)
    nothing = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="fast"))
    assert list(nothing.events) == []
    status = await served.stub.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="fast"))
    assert status.status.state == notifier_pb2.CAUGHT_UP and status.status.lag_events == 0


async def test_ack_only_moves_forward_and_not_past_the_newest_event(served: Served) -> None:
    await put(served, "reports", start_at=notifier_pb2.START_OLDEST)
    await publish(served, 0, 5)
    page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="reports"))
    await served.stub.Ack(notifier_pb2.AckRequest(name="reports", cursor=page.next_cursor))

    back = await served.stub.Ack(
        notifier_pb2.AckRequest(name="reports", cursor=page.events[0].cursor)
    )
    assert back.cursor == page.next_cursor

    error = await refused(
        served.stub.Ack(notifier_pb2.AckRequest(name="reports", cursor="99999999999999-0"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith("cursor: 99999999999999-0 is after the newest event")


async def test_a_subscriber_can_be_streamed_from_its_position(served: Served) -> None:
    await put(served, "reports", start_at=notifier_pb2.START_OLDEST)
    await publish(served, 0, 3)

    call = served.stub.StreamChanges(notifier_pb2.StreamChangesRequest(subscriber="reports"))
    try:
        received = [await asyncio.wait_for(call.read(), timeout=30) for _ in range(3)]
    finally:
        call.cancel()

    assert [e.event_id for e in received] == event_ids(0, 3)


async def test_replacing_keeps_the_position_and_the_secret(served: Served) -> None:
    await put(served, "crm", url=URL, secret=SECRET)
    await publish(served, 0, 2)
    before = await served.store.get("crm")
    assert before is not None

    replaced = await put(served, "crm", url=URL + "/v2", start_at=notifier_pb2.START_OLDEST)

    assert replaced.url == URL + "/v2" and replaced.has_secret
    assert replaced.cursor == before.cursor  # start_at applies to new subscribers only
    after = await served.store.get("crm")
    assert after is not None and after.secret == SECRET
    # The secret is never shown.
    assert "secret" not in json_format.MessageToJson(replaced).lower().replace("hassecret", "")


async def test_seek_moves_a_position_anywhere(served: Served) -> None:
    await put(served, "reports")
    published = await publish(served, 0, 4)

    oldest = await served.stub.SeekSubscriber(
        notifier_pb2.SeekSubscriberRequest(name="reports", to=notifier_pb2.START_OLDEST)
    )
    assert oldest.status.lag_events == 4
    page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="reports"))
    middle = await served.stub.SeekSubscriber(
        notifier_pb2.SeekSubscriberRequest(name="reports", cursor=page.events[1].cursor)
    )
    assert middle.status.lag_events == 2
    latest = await served.stub.SeekSubscriber(
        notifier_pb2.SeekSubscriberRequest(name="reports", to=notifier_pb2.START_LATEST)
    )
    assert latest.cursor == published.last_cursor

    for request in (
        notifier_pb2.SeekSubscriberRequest(name="reports"),
        notifier_pb2.SeekSubscriberRequest(
            name="reports", cursor="1-0", to=notifier_pb2.START_LATEST
        ),
    ):
        error = await refused(served.stub.SeekSubscriber(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "exactly one of cursor and to" in (error.details() or "")


async def test_list_get_and_delete(served: Served) -> None:
    await put(served, "b-reports")
    await put(served, "a-crm", url=URL, secret=SECRET)

    listed = await served.stub.ListSubscribers(notifier_pb2.ListSubscribersRequest())
    assert [s.name for s in listed.subscribers] == ["a-crm", "b-reports"]

    await served.stub.DeleteSubscriber(notifier_pb2.DeleteSubscriberRequest(name="a-crm"))
    for call in (
        served.stub.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="a-crm")),
        served.stub.DeleteSubscriber(notifier_pb2.DeleteSubscriberRequest(name="a-crm")),
        served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="a-crm")),
        served.stub.Ack(notifier_pb2.AckRequest(name="a-crm", cursor="0-0")),
        served.stub.ListDeadLetters(notifier_pb2.ListDeadLettersRequest(name="a-crm")),
        served.stub.ReplayDeadLetters(
            notifier_pb2.ReplayDeadLettersRequest(name="a-crm", all=True)
        ),
    ):
        error = await refused(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "no subscriber named a-crm" in (error.details() or "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "CRM"}, "name: must be a subscriber name"),
        ({"name": "-crm"}, "name: must be a subscriber name"),
        ({"name": "x" * 64}, "name: must be at most 63 characters"),
        ({"name": "crm", "url": URL}, "secret: is required for a webhook subscriber"),
        ({"name": "crm", "url": URL, "secret": "short"}, "secret: must be 16 to 256 characters"),
        ({"name": "crm", "secret": SECRET}, "secret: only a webhook subscriber"),
        ({"name": "crm", "url": "ftp://x.example/h", "secret": SECRET}, "url: must be an http"),
        ({"name": "crm", "url": "https://", "secret": SECRET}, "url: must be an http"),
        ({"name": "crm", "url": "https://u:p@x.example/", "secret": SECRET}, "url: must not carry"),
        ({"name": "crm", "url": "https://x.example:99999/", "secret": SECRET}, "url: must be"),
        ({"name": "crm", "url": "https://x.example/" + "a" * 2048, "secret": SECRET}, "url: must"),
    ],
)
async def test_bad_subscriber_settings_are_refused_naming_the_field(
    served: Served, fields: dict[str, str], message: str
) -> None:
    error = await refused(served.stub.PutSubscriber(notifier_pb2.PutSubscriberRequest(**fields)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith(message), error.details()


async def test_ack_is_refused_for_webhook_subscribers(served: Served) -> None:
    await put(served, "crm", url=URL, secret=SECRET)

    error = await refused(served.stub.Ack(notifier_pb2.AckRequest(name="crm", cursor="0-0")))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "receives webhooks" in (error.details() or "")


async def test_reading_needs_a_cursor_or_a_subscriber_not_both(served: Served) -> None:
    await put(served, "reports")

    error = await refused(
        served.stub.ListChanges(
            notifier_pb2.ListChangesRequest(subscriber="reports", after_cursor="1-0")
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "afterCursor or subscriber, not both" in (error.details() or "")


async def test_the_number_of_subscribers_is_limited(served: Served) -> None:
    for n in range(5):  # the test server allows five
        await put(served, f"sub-{n}")

    error = await refused(put(served, "one-too-many"))

    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at most 5 subscribers" in (error.details() or "")
    await put(served, "sub-0")  # replacing one is still fine


async def test_replay_needs_ids_or_all(served: Served) -> None:
    await put(served, "crm", url=URL, secret=SECRET)

    for request in (
        notifier_pb2.ReplayDeadLettersRequest(name="crm"),
        notifier_pb2.ReplayDeadLettersRequest(name="crm", ids=["1-0"], all=True),
    ):
        error = await refused(served.stub.ReplayDeadLetters(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await refused(
        served.stub.ReplayDeadLetters(
            notifier_pb2.ReplayDeadLettersRequest(name="crm", ids=["1-99999999999999999999"])
        )
    )
    assert (error.details() or "").startswith("ids[0]: must be a dead letter id")


async def test_an_expired_subscriber_is_told_to_seek(change_log: ChangeLog) -> None:
    small = ChangeLog(change_log.redis, change_log.stream_key, max_events=10)
    async with running_notifier(small) as served:
        await put(served, "reports")
        for start in range(0, 300, 50):
            await small.publish([make_event(n) for n in range(start, start + 50)])

        status = await served.stub.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="reports"))
        assert status.status.state == notifier_pb2.EXPIRED
        error = await refused(
            served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="reports"))
        )
        assert error.code() == grpc.StatusCode.OUT_OF_RANGE
        details = error.details() or ""
        assert details.startswith("subscriber reports: events after")
        assert "POST /v1/subscribers/reports:seek" in details

        await served.stub.SeekSubscriber(
            notifier_pb2.SeekSubscriberRequest(name="reports", to=notifier_pb2.START_OLDEST)
        )
        page = await served.stub.ListChanges(notifier_pb2.ListChangesRequest(subscriber="reports"))
        assert page.events[-1].event_id == "event-00299"
