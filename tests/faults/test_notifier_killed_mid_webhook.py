"""The notifier killed (SIGKILL) while a webhook batch is in flight.

A receiver takes the first batch and does not answer; the notifier delivering
it is killed, so it neither hears the answer nor gives its lease up. A second
notifier takes the subscriber over once the lease expires and delivers from the
last acknowledged position.

Outcome asserted: every published event id reaches the receiver; the set of ids
received is the set published; the only ids received twice are those of the
batch that was in flight (delivery is at least once; the LOB app drops repeats
by event id, or by the X-ProfileSync-Delivery id, which the redelivered batch
keeps); the second notifier delivers every event once, in publishing order,
and only while it holds the lease; afterwards the subscriber is caught up with
no dead letters and no failures.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import redis
from notifier_events import eventually, make_event
from notifier_receiver import Received, WebhookReceiver

from devtools.devstack.emulator import running_emulator
from devtools.devstack.lob_client import emulator_token
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID
from devtools.processes import ManagedProcess, python_module
from profilesync.v1 import notifier_pb2, notifier_pb2_grpc
from services.lob_notifier.redis_keys import KeyLayout

ROOT = pathlib.Path(__file__).resolve().parents[2]
EVENTS = 23
BATCH_SIZE = 5
# Short so the test does not wait long for the takeover; the request timeout
# must stay below it (the notifier refuses a lease shorter than a request).
LEASE_SECONDS = 8
WEBHOOK_TIMEOUT_SECONDS = 6
SUBSCRIBER = "lob"
SECRET = "s" * 32


class HoldingReceiver(WebhookReceiver):
    """Holds the first request open, unanswered, until `release()`; notes who
    held the subscriber's lease when each request arrived."""

    def __init__(self, secret: str, redis_url: str, lease_key: str) -> None:
        super().__init__(secret)
        self.holding = threading.Event()
        self.in_flight: list[str] = []
        self.held_delivery_id = ""
        self.lease_owners: list[tuple[Received, str]] = []
        self._released = threading.Event()
        self._redis = redis.Redis.from_url(redis_url)
        self._lease_key = lease_key

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        super().close()
        self._redis.close()

    def _answer(self, headers: Any, body: bytes) -> tuple[int, Received]:
        owner = self._redis.get(self._lease_key)
        with self._lock:
            first = not self.holding.is_set()
            if first:
                self.in_flight = [e["eventId"] for e in json.loads(body)["events"]]
                self.held_delivery_id = headers.get("X-ProfileSync-Delivery", "")
                self.holding.set()
        if first:
            # The answer is written after the sender is dead: it reaches no one.
            self._released.wait(timeout=300)
        status, received = super()._answer(headers, body)
        with self._lock:
            self.lease_owners.append((received, owner.decode() if owner else ""))
        return status, received


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The Graph emulator, playing Entra ID: it issues the tokens the notifier checks."""
    with running_emulator(tmp_path_factory.mktemp("emulator")) as ready:
        yield ready


def _notifier(
    name: str,
    *,
    work: pathlib.Path,
    redis_url: str,
    stream_key: str,
    subscribers_file: pathlib.Path,
    emulator: dict[str, Any],
) -> ManagedProcess:
    ready_file = work / f"{name}.ready.json"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        PYTHONPATH=str(ROOT),
        # The lease owner is HOSTNAME-pid: names the replica in the lease key.
        HOSTNAME=name,
        REDIS_URL=redis_url,
        GRPC_PORT="0",
        READY_FILE=str(ready_file),
        NOTIFIER_STREAM_KEY=stream_key,
        AZURE_TENANT_ID=emulator["tenantId"],
        AZURE_CLIENT_ID=DEFAULT_CLIENT_ID,
        AZURE_AUTHORITY_HOST=emulator["url"],
        AZURE_CA_BUNDLE=emulator["caFile"],
        NOTIFIER_SUBSCRIBERS_FILE=str(subscribers_file),
        # The receiver is on loopback, which only the operator's allow-list opens.
        NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS="127.0.0.0/8",
        NOTIFIER_SUBSCRIBER_POLL_SECONDS="0.2",
        NOTIFIER_LEASE_SECONDS=str(LEASE_SECONDS),
        NOTIFIER_WEBHOOK_TIMEOUT_SECONDS=str(WEBHOOK_TIMEOUT_SECONDS),
        NOTIFIER_WEBHOOK_BATCH_SIZE=str(BATCH_SIZE),
        NOTIFIER_WEBHOOK_BACKOFF_SECONDS="0.2",
        NOTIFIER_WEBHOOK_BACKOFF_MAX_SECONDS="1",
        SHUTDOWN_GRACE_SECONDS="5",
    )
    process = ManagedProcess(
        name,
        python_module("services.lob_notifier"),
        log_dir=work,
        env=env,
        ready_file=ready_file,
        cwd=ROOT,
    ).start()
    process.wait_ready(timeout=60)
    return process


def _metadata(emulator: dict[str, Any], role: str) -> tuple[tuple[str, str], ...]:
    token = emulator_token(emulator["url"], emulator["caFile"], roles=[role])
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.timeout(300)
async def test_a_batch_in_flight_when_the_notifier_dies_is_delivered_again_and_nothing_lost(
    redis_url: str, emulator: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    stream_key = f"test:changes:killed:{uuid.uuid4().hex}"
    lease_key = KeyLayout(stream_key).lease(SUBSCRIBER)
    receiver = HoldingReceiver(SECRET, redis_url, lease_key).listen()
    subscribers_file = tmp_path / "subscribers.json"
    subscribers_file.write_text(
        json.dumps([{"name": SUBSCRIBER, "url": receiver.url, "secret": SECRET}])
    )
    start = {
        "work": tmp_path,
        "redis_url": redis_url,
        "stream_key": stream_key,
        "subscribers_file": subscribers_file,
        "emulator": emulator,
    }
    publisher = _metadata(emulator, "Profiles.Sync")
    reader = _metadata(emulator, "Profiles.Read")
    first = second = None
    try:
        first = _notifier("notifier-a", **start)
        async with grpc.aio.insecure_channel(first.ready["address"]) as channel:
            stub = notifier_pb2_grpc.LobNotifierStub(channel)
            events = [make_event(n, run_id="run-killed") for n in range(EVENTS)]
            published = await stub.Publish(
                notifier_pb2.PublishRequest(events=events), metadata=publisher, timeout=30
            )
        assert published.accepted == EVENTS
        published_ids = [e.event_id for e in events]

        assert await _wait(receiver.holding), "the first batch never reached the receiver"
        first.signal(signal.SIGKILL)
        assert first.stop() == -signal.SIGKILL
        # The dead replica never gave its lease up: it still names it.
        with redis.Redis.from_url(redis_url) as client:
            assert client.get(lease_key) == f"notifier-a-{first.pid}".encode()
        receiver.release()

        async def held_answered() -> bool:
            return len(receiver.requests) == 1

        await eventually(held_answered, what="the held request to be answered")

        second = _notifier("notifier-b", **start)
        async with grpc.aio.insecure_channel(second.ready["address"]) as channel:
            stub = notifier_pb2_grpc.LobNotifierStub(channel)

            async def caught_up() -> notifier_pb2.Subscriber | None:
                found = await stub.GetSubscriber(
                    notifier_pb2.GetSubscriberRequest(name=SUBSCRIBER), metadata=reader, timeout=30
                )
                done = found.status.delivered_events == EVENTS and found.status.lag_events == 0
                return found if done else None

            subscriber = await eventually(caught_up, timeout=180, what="delivery to finish")
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()
        receiver.close()

    in_flight = receiver.in_flight
    assert in_flight == published_ids[:BATCH_SIZE]

    # Every id arrived; nothing arrived that was not published; the ids that
    # arrived twice are exactly the batch in flight (its answer was lost with
    # the process, so it had to be sent again: at least once, never lost).
    received = [event_id for r in receiver.requests for event_id in r.event_ids]
    assert set(received) == set(published_ids)
    counts = Counter(received)
    repeated = {event_id for event_id, count in counts.items() if count > 1}
    assert repeated == set(in_flight)
    assert max(counts.values()) == 2

    # The held request came from the killed replica; every later one from the
    # second, as the lease holder: it took over only once the lease expired.
    (held, held_by), *later = receiver.lease_owners
    assert held.event_ids == in_flight and held_by == f"notifier-a-{first.pid}"
    assert {owner for _, owner in later} == {f"notifier-b-{second.pid}"}
    # It delivered everything once, in publishing order, starting with the batch
    # it never saw answered, under the same delivery id.
    accepted = [r for r, _ in later if 200 <= r.answered < 300]
    assert [event_id for r in accepted for event_id in r.event_ids] == published_ids
    assert accepted[0].delivery_id == receiver.held_delivery_id

    status = subscriber.status
    assert notifier_pb2.SubscriberState.Name(status.state) == "CAUGHT_UP"
    assert (status.lag_events, status.dead_letters, status.consecutive_failures) == (0, 0, 0)
    assert subscriber.cursor == accepted[-1].body["cursor"]
    assert "Traceback" not in second.tail(400), second.tail(400)


async def _wait(event: threading.Event, timeout: float = 120) -> bool:
    return await asyncio.to_thread(event.wait, timeout)
