"""A LOB client holding only a `Profiles.Read` token, on the whole stack through the gateway:

- it opens 300 change streams at once: each is served or refused with 429 and Retry-After
  (the per-caller cap is 250 here), and meanwhile `GET /v1/changes`, a sync's publish and
  webhook delivery keep working, and every open stream gets the published event;
- it cannot point a webhook at the node's metadata service or other internal addresses;
- it sees subscribers without their URLs' query strings and cannot move another consumer.

Its own stack: the notifier's allow-list names loopback for this file's receiver, as the
embedded default does for its own.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from devtools.devstack.lob_client import emulator_token
from devtools.devstack.stack import Stack, StackOptions
from profilesync.v1 import notifier_pb2, notifier_pb2_grpc

STREAMS = 300
PER_CALLER = 250
SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(
        state_dir=tmp_path_factory.mktemp("notifier-flood"),
        users=5,
        seed=17,
        env={
            "NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS": "127.0.0.0/8",
            "NOTIFIER_MAX_WAITING_CALLS_PER_CALLER": str(PER_CALLER),
            "NOTIFIER_HEARTBEAT_SECONDS": "5",
        },
    )
    with Stack(options) as running:
        yield running


def token(stack: Stack, *roles: str, client_id: str | None = None) -> str:
    """An app token; `client_id` makes it another app registration's (another caller)."""
    claims: dict[str, Any] = {"roles": list(roles)}
    if client_id is not None:
        claims["clientId"] = client_id
    return emulator_token(stack.emulator_url, stack.ca_file, **claims)


class Receiver:
    """A webhook receiver that verifies every delivery with the Standard Webhooks library."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.refused = 0
        receiver = self
        verifier = Webhook(SECRET.encode())

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    batch = verifier.verify(body, dict(self.headers))
                    receiver.events += [e["eventId"] for e in batch["events"]]
                    status = 204
                except Exception:
                    receiver.refused += 1
                    status = 401
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def open_stream(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[int, str | None, Any]:
    """Status, Retry-After, and (when served) the open response with its first line read."""
    request = http.build_request("GET", "/v1/changes:stream", headers=headers)
    response = await http.send(request, stream=True)
    if response.status_code != 200:
        await response.aread()
        await response.aclose()
        return response.status_code, response.headers.get("retry-after"), None
    lines = response.aiter_lines()
    first = json.loads(await asyncio.wait_for(anext(lines), 60))
    assert first["heartbeat"] is True
    return 200, None, (response, lines)


async def next_event(lines: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(anext(lines), 60))
        if not message["heartbeat"]:
            return dict(message)


async def test_300_streams_from_one_reader_are_served_or_refused_and_nothing_else_degrades(
    stack: Stack,
) -> None:
    reader = {"Authorization": f"Bearer {token(stack, 'Profiles.Read')}"}
    manager = {"Authorization": f"Bearer {token(stack, 'Subscribers.Manage')}"}
    publisher = token(stack, "Profiles.Sync")
    receiver = Receiver()
    limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=STREAMS + 20)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=60, limits=limits, trust_env=False
    ) as http:
        created = await http.put(
            "/v1/subscribers/flood-hook",
            headers=manager,
            json={"url": receiver.url, "secret": SECRET},
        )
        assert created.status_code == 200, created.text

        opened = await asyncio.gather(*(open_stream(http, reader) for _ in range(STREAMS)))
        try:
            served = [entry for status, _, entry in opened if status == 200]
            refused = [(status, after) for status, after, _ in opened if status != 200]
            assert len(served) == PER_CALLER
            assert refused == [(429, "5")] * (STREAMS - PER_CALLER)

            # A plain read answers while every stream is open.
            started = time.monotonic()
            page = await http.get("/v1/changes", headers=reader, params={"pageSize": 1})
            assert page.status_code == 200, page.text
            read_seconds = time.monotonic() - started

            # A sync's publish goes through (Publish is internal: straight to the notifier).
            async with grpc.aio.insecure_channel(stack.notifier_addr) as channel:
                stub = notifier_pb2_grpc.LobNotifierStub(channel)
                published = await stub.Publish(
                    notifier_pb2.PublishRequest(
                        events=[
                            notifier_pb2.ChangeEvent(
                                event_id="flood-event-1",
                                user_id="flood-user",
                                kind=notifier_pb2.UPDATED,
                            )
                        ]
                    ),
                    metadata=[("authorization", f"Bearer {publisher}")],
                    timeout=30,
                )
            assert published.accepted == 1

            # Every open stream gets it, and so does the webhook.
            received = await asyncio.gather(*(next_event(lines) for _, lines in served))
            assert {event["eventId"] for event in received} == {"flood-event-1"}
            deadline = time.monotonic() + 60
            while "flood-event-1" not in receiver.events and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert "flood-event-1" in receiver.events
            assert receiver.refused == 0
        finally:
            for _, _, entry in opened:
                if entry is not None:
                    await entry[0].aclose()
            receiver.close()
    # The figure the issue reported as 503s; kept visible for whoever reads the log.
    print(f"GET /v1/changes with {PER_CALLER} streams open: {read_seconds * 1000:.0f} ms")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "must use https"),
        ("https://169.254.169.254/latest/meta-data/iam/", "link-local"),
        ("https://10.0.0.1/hook", "private"),
        ("https://[fd12::1]/hook", "private"),
        ("https://100.64.0.10/hook", "shared"),
    ],
)
def test_a_webhook_cannot_point_inside(stack: Stack, url: str, reason: str) -> None:
    manager = {"Authorization": f"Bearer {token(stack, 'Subscribers.Manage')}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30, trust_env=False) as http:
        answer = http.put(
            "/v1/subscribers/inside", headers=manager, json={"url": url, "secret": SECRET}
        )
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert message.startswith("url: ") and reason in message


def test_a_reader_sees_no_query_strings_and_moves_no_one(stack: Stack) -> None:
    manager = {"Authorization": f"Bearer {token(stack, 'Subscribers.Manage')}"}
    # Another LOB app: it did not create the subscribers.
    reader_token = token(stack, "Profiles.Read", client_id=str(uuid.uuid4()))
    reader = {"Authorization": f"Bearer {reader_token}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30, trust_env=False) as http:
        hook = "https://hooks.example.com/in?code=s3cr3t"
        assert (
            http.put(
                "/v1/subscribers/keyed", headers=manager, json={"url": hook, "secret": SECRET}
            ).status_code
            == 200
        )
        assert http.put("/v1/subscribers/puller", headers=manager, json={}).status_code == 200

        seen = http.get("/v1/subscribers/keyed", headers=reader).json()
        assert seen["url"] == "https://hooks.example.com/in"
        assert "s3cr3t" not in http.get("/v1/subscribers", headers=reader).text

        cursor = http.get("/v1/changes", headers=reader).json()["lastCursor"] or "0-0"
        moved = http.post("/v1/subscribers/puller:ack", headers=reader, json={"cursor": cursor})
        assert moved.status_code == 403
        assert "Subscribers.Manage" in moved.json()["message"]
