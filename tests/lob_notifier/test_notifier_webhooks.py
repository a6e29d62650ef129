"""Webhook push end to end: a real HTTP receiver on loopback, real Redis, real delivery workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from notifier_events import event_ids, eventually, make_event
from notifier_harness import LOOPBACK, Served
from notifier_receiver import WebhookReceiver

from profilesync.v1 import notifier_pb2
from services.lob_notifier.admin import SubscriberAdmin
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.delivery import DeliveryManager, backoff_seconds
from services.lob_notifier.settings import DeliverySettings
from services.lob_notifier.subscribers import SubscriberStore
from services.lob_notifier.webhook import WebhookSender

SECRET = "a-webhook-secret-of-some-length"

StartDelivery = Callable[..., Awaitable[DeliveryManager]]


def delivery_settings(**overrides: Any) -> DeliverySettings:
    # Fast retries so a test sees many attempts quickly; no timing is asserted.
    values: dict[str, Any] = {
        "batch_size": 10,
        "timeout_seconds": 5.0,
        "max_attempts": 1000,
        "backoff_seconds": 0.02,
        "backoff_max_seconds": 0.2,
        "lease_seconds": 10.0,
        "poll_seconds": 0.1,
        "replica": "replica-a",
    }
    values.update(overrides)
    return DeliverySettings(**values)


@pytest.fixture
async def start_delivery(
    change_log: ChangeLog, store: SubscriberStore
) -> AsyncIterator[StartDelivery]:
    started: list[tuple[DeliveryManager, WebhookSender]] = []

    async def start(*, log: ChangeLog | None = None, **overrides: Any) -> DeliveryManager:
        settings = delivery_settings(**overrides)
        sender = WebhookSender(
            timeout_seconds=settings.timeout_seconds, ca_bundle=None, policy=LOOPBACK
        )
        used_log = log or change_log
        admin = SubscriberAdmin(used_log, store, max_subscribers=10, destinations=LOOPBACK)
        manager = DeliveryManager(used_log, store, admin, sender, settings)
        await manager.start()
        started.append((manager, sender))
        return manager

    yield start
    for manager, sender in started:
        await manager.stop()
        await sender.aclose()


@pytest.fixture
def receivers() -> Iterator[Callable[..., WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def make(**options: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(SECRET, **options)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
async def receiver(served: Served, receivers: Callable[..., WebhookReceiver]) -> WebhookReceiver:
    """A listening receiver, subscribed as "crm"; delivery is not started yet."""
    listening = receivers().listen()
    await subscribe(served, "crm", listening.url)
    return listening


async def subscribe(served: Served, name: str, url: str) -> notifier_pb2.Subscriber:
    return await served.stub.PutSubscriber(
        notifier_pb2.PutSubscriberRequest(name=name, url=url, secret=SECRET)
    )


async def until_delivered(what: str, count: int, *receivers: WebhookReceiver) -> None:
    """Waits until each receiver has accepted at least `count` events."""

    async def enough() -> bool:
        return all(len(receiver.delivered_ids()) >= count for receiver in receivers)

    await eventually(enough, what=what)


async def until_state(
    served: Served, name: str, what: str, accept: Callable[[notifier_pb2.Subscriber], bool]
) -> notifier_pb2.Subscriber:
    """Waits until the subscriber as the API shows it satisfies `accept`."""

    async def shown() -> notifier_pb2.Subscriber | None:
        answer = await served.stub.GetSubscriber(notifier_pb2.GetSubscriberRequest(name=name))
        return answer if accept(answer) else None

    result: notifier_pb2.Subscriber = await eventually(shown, what=what)
    return result


async def publish(served: Served, start: int, stop: int) -> notifier_pb2.PublishResponse:
    events = [make_event(n) for n in range(start, stop)]
    return await served.stub.Publish(notifier_pb2.PublishRequest(events=events))


async def test_a_receiver_down_then_failing_then_back_gets_every_event_once_in_order(
    served: Served,
    start_delivery: StartDelivery,
    receivers: Callable[..., WebhookReceiver],
) -> None:
    receiver = receivers()  # bound, not listening: connections are refused
    await subscribe(served, "crm", receiver.url)
    await start_delivery()
    await publish(served, 0, 10)
    await publish(served, 10, 20)

    # Down: every attempt fails to connect and is retried.
    async def failed_to_connect() -> bool:
        record = await served.store.get("crm")
        return record is not None and record.failures >= 3

    await eventually(failed_to_connect, what="attempts against a receiver that is down")
    record = await served.store.get("crm")
    assert record is not None and "cannot reach the receiver" in record.last_error
    assert receiver.requests == []

    # Up, but answering 500 for a while.
    receiver.failing_with = 500
    receiver.listen()
    await publish(served, 20, 30)

    async def answered_500_four_times() -> bool:
        return sum(r.answered == 500 for r in receiver.requests) >= 4

    await eventually(answered_500_four_times, what="500 answers")
    failing = await served.stub.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="crm"))
    assert failing.status.state == notifier_pb2.RETRYING
    assert failing.status.consecutive_failures >= 1
    assert failing.status.lag_events == 30

    # Recovered.
    receiver.failing_with = None
    await publish(served, 30, 45)
    last = await publish(served, 45, 60)

    await until_delivered("every event delivered", 60, receiver)

    assert receiver.delivered_ids() == event_ids(0, 60)  # each once, in order
    assert all(r.signature_error is None for r in receiver.requests)
    # The batch that met the outage was retried as the same delivery.
    first = receiver.accepted()[0]
    same_batch = [r for r in receiver.requests if r.delivery_id == first.delivery_id]
    assert [r.answered for r in same_batch][-1] == 200
    assert {r.answered for r in same_batch[:-1]} == {500}
    attempts = [r.attempt for r in same_batch]
    assert attempts == sorted(attempts) and attempts[0] > 3  # counting went on from the outage

    status = await until_state(
        served,
        "crm",
        "the subscriber caught up",
        lambda s: s.status.state == notifier_pb2.CAUGHT_UP,
    )
    assert status.cursor == last.last_cursor
    assert status.status.lag_events == 0 and status.status.lag_seconds == 0
    assert status.status.delivered_events == 60
    assert status.status.consecutive_failures == 0
    assert status.status.last_error.startswith("HTTP 500")
    assert status.status.last_success_time.seconds > 0
    assert status.status.last_error_time.seconds > 0


async def test_the_request_carries_the_documented_headers_and_body(
    served: Served,
    start_delivery: StartDelivery,
    receiver: WebhookReceiver,
) -> None:
    await start_delivery()
    published = await publish(served, 0, 3)

    await until_delivered("the batch", 3, receiver)
    [request] = receiver.accepted()
    assert request.subscriber == "crm" == request.body["subscriber"]
    assert request.delivery_id == request.body["deliveryId"] and len(request.delivery_id) == 32
    assert request.attempt == 1
    assert request.body["cursor"] == published.last_cursor
    event = request.body["events"][0]
    # The REST API's JSON: lowerCamelCase, enums by name, empty fields present.
    assert event["userId"] == "user-0" and event["changedFields"] == ["skills"]
    assert event["kind"] == "UPDATED" and event["origin"] == "SHAREPOINT"
    assert event["heartbeat"] is False and event["cursor"]


async def test_subscribers_at_different_speeds_each_get_everything(
    served: Served,
    start_delivery: StartDelivery,
    receivers: Callable[..., WebhookReceiver],
) -> None:
    fast = receivers().listen()
    slow = receivers(delay=0.05).listen()
    down = receivers()  # not listening until the others are done
    for name, receiver in (("fast", fast), ("slow", slow), ("down", down)):
        await subscribe(served, name, receiver.url)
    await start_delivery(batch_size=5)
    for start in range(0, 100, 10):
        await publish(served, start, start + 10)

    await until_delivered("the fast and the slow receiver", 100, fast, slow)
    assert fast.delivered_ids() == event_ids(0, 100)
    assert slow.delivered_ids() == event_ids(0, 100)
    # The one that is down held nobody back, and shows why it is behind.
    behind = await served.stub.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="down"))
    assert behind.status.state == notifier_pb2.RETRYING
    assert behind.status.lag_events == 100
    assert "cannot reach the receiver" in behind.status.last_error

    down.listen()

    await until_delivered("the receiver that came back", 100, down)
    assert down.delivered_ids() == event_ids(0, 100)
    assert all(r.signature_error is None for r in fast.requests + slow.requests + down.requests)


async def test_a_batch_failing_every_attempt_is_dead_lettered_and_can_be_replayed(
    served: Served,
    start_delivery: StartDelivery,
    receiver: WebhookReceiver,
) -> None:
    receiver.failing_with = 500
    await start_delivery(max_attempts=3)
    await publish(served, 0, 5)

    async def parked() -> bool:
        return await served.store.dead_letter_count("crm") == 1

    await eventually(parked, what="the batch in the dead-letter list")
    assert [r.attempt for r in receiver.requests] == [1, 2, 3]

    # Delivery goes on with the next batch.
    receiver.failing_with = None
    await publish(served, 5, 10)

    async def next_batch_delivered() -> bool:
        return receiver.delivered_ids() == event_ids(5, 10)

    await eventually(next_batch_delivered, what="the batch after the parked one")

    page = await served.stub.ListDeadLetters(notifier_pb2.ListDeadLettersRequest(name="crm"))
    [dead] = page.dead_letters
    assert [e.event_id for e in dead.events] == event_ids(0, 5)
    assert dead.attempts == 3 and dead.event_count == 5 and not dead.expired
    assert dead.last_error.startswith("HTTP 500")
    assert dead.delivery_id == receiver.requests[0].delivery_id
    assert dead.first_cursor == dead.events[0].cursor and dead.last_cursor == dead.events[-1].cursor
    assert page.next_page_token == ""
    status = await served.stub.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="crm"))
    assert status.status.dead_letters == 1

    replayed = await served.stub.ReplayDeadLetters(
        notifier_pb2.ReplayDeadLettersRequest(name="crm", ids=[dead.id, "1-1"])
    )
    assert replayed.queued == 1 and list(replayed.not_found) == ["1-1"]

    await until_delivered("the replayed batch", 10, receiver)
    # The replay comes after what was delivered meanwhile, under its first delivery id.
    assert receiver.delivered_ids() == event_ids(5, 10) + event_ids(0, 5)
    assert receiver.accepted()[-1].delivery_id == dead.delivery_id
    after = await served.stub.ListDeadLetters(notifier_pb2.ListDeadLettersRequest(name="crm"))
    assert list(after.dead_letters) == []


async def test_dead_letters_are_listed_in_pages_and_replayed_all_at_once(
    served: Served,
    start_delivery: StartDelivery,
    receiver: WebhookReceiver,
) -> None:
    receiver.failing_with = 503
    await start_delivery(max_attempts=1, batch_size=2)
    await publish(served, 0, 6)

    async def three_parked() -> bool:
        return await served.store.dead_letter_count("crm") == 3

    await eventually(three_parked, what="three parked batches")
    first = await served.stub.ListDeadLetters(
        notifier_pb2.ListDeadLettersRequest(name="crm", page_size=2)
    )
    token = first.next_page_token
    second = await served.stub.ListDeadLetters(
        notifier_pb2.ListDeadLettersRequest(name="crm", page_size=2, page_token=token)
    )
    assert len(first.dead_letters) == 2 and first.next_page_token
    assert len(second.dead_letters) == 1 and second.next_page_token == ""
    listed = [e.event_id for page in (first, second) for d in page.dead_letters for e in d.events]
    assert listed == event_ids(0, 6)

    receiver.failing_with = None
    replayed = await served.stub.ReplayDeadLetters(
        notifier_pb2.ReplayDeadLettersRequest(name="crm", all=True)
    )
    assert replayed.queued == 3

    await until_delivered("every replayed batch", 6, receiver)
    assert receiver.delivered_ids() == event_ids(0, 6)  # parked order is kept


async def test_only_one_replica_delivers_a_subscriber_and_another_takes_over(
    served: Served,
    start_delivery: StartDelivery,
    receiver: WebhookReceiver,
) -> None:
    replica_a = await start_delivery(replica="replica-a")
    replica_b = await start_delivery(replica="replica-b")
    for start in range(0, 50, 10):
        await publish(served, start, start + 10)

    await until_delivered("the first 50 events", 50, receiver)
    holders = [m for m in (replica_a, replica_b) if "crm" in m.delivering]
    assert len(holders) == 1
    [holder] = holders
    other = replica_b if holder is replica_a else replica_a

    # The holder stops (a rollout): it hands the lease over at once.
    await holder.stop()
    for start in range(50, 100, 10):
        await publish(served, start, start + 10)

    await until_delivered("the events after the takeover", 100, receiver)
    assert receiver.delivered_ids() == event_ids(0, 100)
    assert other.delivering == ["crm"]


async def test_an_expired_webhook_position_stops_delivery_until_seek(
    served: Served,
    start_delivery: StartDelivery,
    receivers: Callable[..., WebhookReceiver],
) -> None:
    small = ChangeLog(served.change_log.redis, served.change_log.stream_key, max_events=10)
    receiver = receivers()  # down while retention overtakes it
    await subscribe(served, "crm", receiver.url)
    await start_delivery(log=small)
    for start in range(0, 300, 50):
        await small.publish([make_event(n) for n in range(start, start + 50)])

    await until_state(
        served, "crm", "the EXPIRED state", lambda s: s.status.state == notifier_pb2.EXPIRED
    )
    receiver.listen()

    await until_state(
        served,
        "crm",
        "the expired position reported",
        lambda s: "position expired" in s.status.last_error,
    )
    assert receiver.delivered_ids() == []  # nothing after a gap, silently

    await served.stub.SeekSubscriber(
        notifier_pb2.SeekSubscriberRequest(name="crm", to=notifier_pb2.START_LATEST)
    )
    await small.publish([make_event(1000)])

    async def delivered_after_seek() -> bool:
        return receiver.delivered_ids() == ["event-01000"]

    await eventually(delivered_after_seek, what="delivery after the seek")


async def test_deleting_a_subscriber_stops_its_delivery(
    served: Served,
    start_delivery: StartDelivery,
    receiver: WebhookReceiver,
) -> None:
    manager = await start_delivery()

    async def delivering() -> bool:
        return manager.delivering == ["crm"]

    await eventually(delivering, what="the worker")
    await served.stub.DeleteSubscriber(notifier_pb2.DeleteSubscriberRequest(name="crm"))

    async def stopped() -> bool:
        return manager.delivering == []

    await eventually(stopped, what="the worker to stop")
    await publish(served, 0, 3)
    assert await served.store.get("crm") is None


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after() -> None:
    settings = delivery_settings(backoff_seconds=1.0, backoff_max_seconds=300.0)
    for failures, ceiling in ((1, 1.0), (2, 2.0), (5, 16.0), (20, 300.0)):
        delays = [backoff_seconds(failures, settings, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert backoff_seconds(1, settings, 30.0) >= 30.0
    assert backoff_seconds(1, settings, 10_000.0) == 300.0


async def test_a_dead_letter_whose_events_were_trimmed_cannot_be_replayed(
    served: Served,
    start_delivery: StartDelivery,
    receivers: Callable[..., WebhookReceiver],
) -> None:
    small = ChangeLog(served.change_log.redis, served.change_log.stream_key, max_events=10)
    receiver = receivers().listen()
    receiver.failing_with = 500
    await subscribe(served, "crm", receiver.url)
    await start_delivery(log=small, max_attempts=1, batch_size=100)
    await small.publish([make_event(n) for n in range(5)])

    async def parked() -> bool:
        return await served.store.dead_letter_count("crm") == 1

    await eventually(parked, what="the parked batch")
    receiver.failing_with = None
    # Retention overtakes the parked batch, while the subscriber keeps up
    # (batches smaller than the log's limit, each delivered before the next).
    for start in range(5, 155, 5):
        await small.publish([make_event(n) for n in range(start, start + 5)])

        async def kept_up(expected: int = start) -> bool:
            return len(receiver.delivered_ids()) == expected

        await eventually(kept_up, what="delivery to keep up")

    page = await served.stub.ListDeadLetters(notifier_pb2.ListDeadLettersRequest(name="crm"))
    [dead] = page.dead_letters
    assert dead.expired and list(dead.events) == [] and dead.event_count == 5

    await served.stub.ReplayDeadLetters(notifier_pb2.ReplayDeadLettersRequest(name="crm", all=True))

    async def parked_again() -> notifier_pb2.DeadLetter | None:
        answer = await served.stub.ListDeadLetters(notifier_pb2.ListDeadLettersRequest(name="crm"))
        return answer.dead_letters[0] if answer.dead_letters else None

    again = await eventually(parked_again, what="the replay refused and parked again")
    assert "cannot replay" in again.last_error and again.delivery_id == dead.delivery_id
    assert receiver.delivered_ids() == event_ids(5, 155)
