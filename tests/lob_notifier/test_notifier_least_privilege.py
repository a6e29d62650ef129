"""What a `Profiles.Read` caller may see and do with subscribers: URLs without their query
strings, and Ack only on a subscriber it created; `Subscribers.Manage` sees and moves all.

The handlers are called as the interceptor calls them, with the verified caller set (the
token checks themselves are covered by the gateway and security suites)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from notifier_events import make_event
from notifier_harness import Served

from profilesync.v1 import notifier_pb2
from services.common.auth import Principal, set_principal
from services.common.errors import PermissionDenied

SECRET = "a-webhook-secret-of-some-length"
HOOK = "https://hooks.example.com:8443/in/profiles?code=s3cr3t-key&x=1"


def app(subject: str, *roles: str) -> Principal:
    return Principal(
        subject=subject,
        name=subject,
        is_user=False,
        roles=frozenset(roles),
        scopes=frozenset(),
        token="",
    )


READER = app("reader-app", "Profiles.Read")
OWNER = app("owner-app", "Profiles.Read", "Subscribers.Manage")
MANAGER = app("manager-app", "Subscribers.Manage")


@contextlib.contextmanager
def calling_as(principal: Principal) -> Iterator[None]:
    token = set_principal(principal)
    try:
        yield
    finally:
        set_principal(None)
        del token


@pytest.fixture
async def subscribers(served: Served) -> Served:
    servicer = served.servicer
    with calling_as(OWNER):
        await servicer.PutSubscriber(
            notifier_pb2.PutSubscriberRequest(name="hook", url=HOOK, secret=SECRET), None
        )
        await servicer.PutSubscriber(
            notifier_pb2.PutSubscriberRequest(name="pull", start_at=notifier_pb2.START_OLDEST),
            None,
        )
    await served.stub.Publish(notifier_pb2.PublishRequest(events=[make_event(1), make_event(2)]))
    return served


async def test_a_reader_sees_urls_without_query_strings(subscribers: Served) -> None:
    servicer = subscribers.servicer
    with calling_as(READER):
        listed = await servicer.ListSubscribers(notifier_pb2.ListSubscribersRequest(), None)
        one = await servicer.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="hook"), None)
    urls = {s.name: s.url for s in listed.subscribers}
    assert urls == {"hook": "https://hooks.example.com:8443/in/profiles", "pull": ""}
    assert one.url == "https://hooks.example.com:8443/in/profiles"

    with calling_as(MANAGER):
        managed = await servicer.GetSubscriber(notifier_pb2.GetSubscriberRequest(name="hook"), None)
    assert managed.url == HOOK


async def test_a_reader_cannot_move_another_callers_subscriber(subscribers: Served) -> None:
    servicer = subscribers.servicer
    last = (await subscribers.stub.ListChanges(notifier_pb2.ListChangesRequest())).last_cursor
    ack = notifier_pb2.AckRequest(name="pull", cursor=last)

    with calling_as(READER), pytest.raises(PermissionDenied) as caught:
        await servicer.Ack(ack, None)
    assert "Subscribers.Manage" in str(caught.value)
    record = await subscribers.store.get("pull")
    assert record is not None and record.cursor != last

    with calling_as(app("owner-app", "Profiles.Read")):  # the owner, with the reader role only
        moved = await servicer.Ack(ack, None)
    assert moved.cursor == last


async def test_subscribers_manage_may_ack_any_subscriber(subscribers: Served) -> None:
    last = (await subscribers.stub.ListChanges(notifier_pb2.ListChangesRequest())).last_cursor
    with calling_as(MANAGER):
        moved = await subscribers.servicer.Ack(
            notifier_pb2.AckRequest(name="pull", cursor=last), None
        )
    assert moved.cursor == last
