"""NOTIFIER_SUBSCRIBERS_FILE: its format, its errors, and how replicas apply it."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from notifier_events import eventually
from notifier_harness import Served

from devtools.processes import free_port
from profilesync.v1 import notifier_pb2
from services.common.settings import ConfigError
from services.lob_notifier.admin import SubscriberAdmin
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.delivery import DeliveryManager
from services.lob_notifier.settings import DeliverySettings
from services.lob_notifier.subscribers import SubscriberStore
from services.lob_notifier.subscribers_file import load_subscribers_file, parse_subscribers
from services.lob_notifier.webhook import WebhookSender

SECRET = "file-secret-0123456789"
# Nothing listens here: these tests are about settings, and must not reach out.
CLOSED = f"http://127.0.0.1:{free_port()}"


def entry(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "url": f"{CLOSED}/{name}", "secret": SECRET, **fields}


def test_a_valid_file_is_parsed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "subscribers.json"
    path.write_text(json.dumps([entry("crm"), entry("dw", startAt="oldest")]))

    crm, dw = load_subscribers_file(str(path))

    assert (crm.name, crm.url, crm.secret) == ("crm", f"{CLOSED}/crm", SECRET)
    assert crm.start_at == "latest"
    assert dw.start_at == "oldest"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"name": "crm"}), "must be a JSON list"),
        (json.dumps(["crm"]), "entry 0: must be an object"),
        (json.dumps([{"url": "https://x.example/"}]), "entry 0: name is required"),
        (json.dumps([entry("crm"), entry("CRM")]), "entry 1: name must be 1 to 63"),
        (json.dumps([entry("crm", url="http//x")]), "entry 0: url must be an http or https URL"),
        (json.dumps([entry("crm", secret="short")]), "entry 0: secret must be 16 to 256"),
        (json.dumps([entry("crm", startAt="now")]), "entry 0: startAt must be"),
        (json.dumps([entry("crm", retries=3)]), "entry 0: unknown field 'retries'"),
        (json.dumps([entry("crm"), entry("crm")]), "entry 1: name 'crm' appears twice"),
    ],
)
def test_a_bad_file_names_the_entry_and_field(document: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_subscribers(document, "NOTIFIER_SUBSCRIBERS_FILE (x.json)")

    assert str(caught.value).startswith("NOTIFIER_SUBSCRIBERS_FILE (x.json): ")
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.fixture
async def file_manager(
    change_log: ChangeLog, store: SubscriberStore, tmp_path: pathlib.Path
) -> AsyncIterator[tuple[pathlib.Path, DeliveryManager]]:
    path = tmp_path / "subscribers.json"
    path.write_text(json.dumps([entry("crm"), entry("dw")]))
    sender = WebhookSender(timeout_seconds=1, ca_bundle=None)
    manager = DeliveryManager(
        change_log,
        store,
        SubscriberAdmin(change_log, store, max_subscribers=1),
        sender,
        # Long backoff: nothing listens at these URLs, and no test here needs delivery.
        DeliverySettings(poll_seconds=0.1, backoff_seconds=60, backoff_max_seconds=60),
        subscribers_file=str(path),
    )
    await manager.start()
    try:
        yield path, manager
    finally:
        await manager.stop()
        await sender.aclose()


async def test_file_subscribers_are_created_and_follow_the_file(
    served: Served, file_manager: tuple[pathlib.Path, DeliveryManager]
) -> None:
    path, _ = file_manager
    listed = await served.stub.ListSubscribers(notifier_pb2.ListSubscribersRequest())
    assert [(s.name, s.source, s.has_secret) for s in listed.subscribers] == [
        ("crm", notifier_pb2.SOURCE_FILE, True),
        ("dw", notifier_pb2.SOURCE_FILE, True),
    ]

    # Kubernetes updates the mounted Secret: dw is gone, crm moved, erp is new.
    path.write_text(json.dumps([entry("crm", url=f"{CLOSED}/crm2"), entry("erp")]))

    async def applied() -> list[tuple[str, str]] | None:
        answer = await served.stub.ListSubscribers(notifier_pb2.ListSubscribersRequest())
        found = [(s.name, s.url) for s in answer.subscribers]
        return found if [name for name, _ in found] == ["crm", "erp"] else None

    found = await eventually(applied, what="the edited file applied")
    assert found[0] == ("crm", f"{CLOSED}/crm2")


async def test_a_broken_edit_keeps_the_last_good_subscribers(
    served: Served, file_manager: tuple[pathlib.Path, DeliveryManager]
) -> None:
    path, manager = file_manager
    path.write_text("[{broken")
    await manager._tick()  # one round, as the poll loop runs it

    listed = await served.stub.ListSubscribers(notifier_pb2.ListSubscribersRequest())
    assert [s.name for s in listed.subscribers] == ["crm", "dw"]


async def test_the_api_may_not_change_file_subscribers(
    served: Served, file_manager: tuple[pathlib.Path, DeliveryManager]
) -> None:
    for call in (
        served.stub.PutSubscriber(notifier_pb2.PutSubscriberRequest(name="crm")),
        served.stub.DeleteSubscriber(notifier_pb2.DeleteSubscriberRequest(name="crm")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "NOTIFIER_SUBSCRIBERS_FILE" in (caught.value.details() or "")
    # Positions are not the file's business.
    moved = await served.stub.SeekSubscriber(
        notifier_pb2.SeekSubscriberRequest(name="crm", to=notifier_pb2.START_OLDEST)
    )
    assert moved.source == notifier_pb2.SOURCE_FILE
