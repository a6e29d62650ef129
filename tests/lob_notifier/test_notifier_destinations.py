"""Webhook destinations: public https by default, the operator's allow-list for the rest,
checked again on the resolved address before every delivery; a receiver's answer is
reported by status code and a fixed reason, never echoed.

The address ranges are those of RFC 1918 (private IPv4), RFC 4193 (fc00::/7), RFC 3927
(169.254.0.0/16, where the EC2 instance metadata service answers at 169.254.169.254:
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html) and
RFC 6598 (100.64.0.0/10)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from notifier_harness import Served

from profilesync.v1 import notifier_pb2
from services.common.settings import ConfigError
from services.lob_notifier.destinations import DestinationPolicy
from services.lob_notifier.webhook import WebhookSender

SECRET = "a-webhook-secret-of-some-length"
LEAKY_BODY = "internal: db-password=hunter2 at 10.0.0.5"


@pytest.fixture
def strict(served: Served) -> Served:
    """The served notifier with the default policy: nothing allowed beyond public https."""
    served.servicer._admin._destinations = DestinationPolicy()
    return served


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://127.0.0.1:9901/quitquitquit", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://172.16.0.9/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://100.64.3.4/hook", "shared"),
        ("https://0.0.0.0/hook", "reserved"),
        ("https://localhost:8443/hook", "resolves to a loopback address"),
        ("http://lob.example.com/hook", "must use https"),
    ],
)
async def test_unsafe_destinations_are_refused_with_the_reason(
    strict: Served, url: str, reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await strict.stub.PutSubscriber(
            notifier_pb2.PutSubscriberRequest(name="crm", url=url, secret=SECRET)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert details.startswith("url: ") and reason in details
    assert await strict.store.get("crm") is None


async def test_a_public_https_receiver_is_accepted(strict: Served) -> None:
    created = await strict.stub.PutSubscriber(
        notifier_pb2.PutSubscriberRequest(
            name="crm", url="https://93.184.215.14/hook", secret=SECRET
        )
    )
    assert created.url == "https://93.184.215.14/hook"


async def test_the_allow_list_opens_what_it_names_over_http_or_https(served: Served) -> None:
    served.servicer._admin._destinations = DestinationPolicy.parse("10.20.0.0/16,hooks.internal")
    for name, url in [
        ("in-range", "http://10.20.3.4:8080/hook"),
        ("named", "http://hooks.internal/hook"),
    ]:
        await served.stub.PutSubscriber(
            notifier_pb2.PutSubscriberRequest(name=name, url=url, secret=SECRET)
        )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.PutSubscriber(
            notifier_pb2.PutSubscriberRequest(
                name="outside", url="http://10.21.0.1/hook", secret=SECRET
            )
        )
    assert "NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS" in (caught.value.details() or "")


@pytest.mark.parametrize("value", ["10.0.0.0/33", "not a host!", "300.1.1.1/8"])
def test_a_malformed_allow_list_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        DestinationPolicy.parse(value)
    assert str(caught.value).startswith("NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS: ")


class Receiver:
    """Answers every POST with `status` and a body that must never reach the notifier's status."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(dict(self.headers))
                body = LEAKY_BODY.encode()
                self.send_response(receiver.status, "Leaky Reason " + LEAKY_BODY)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(500)
    yield made
    made.close()


async def test_delivery_checks_the_resolved_address_every_time(receiver: Receiver) -> None:
    # A name allowed when the subscriber was made may resolve elsewhere later (DNS
    # rebinding): each attempt resolves it again and checks the address it connects to.
    strict = WebhookSender(timeout_seconds=5, ca_bundle=None, policy=DestinationPolicy())
    try:
        outcome = await strict.send(
            f"https://localhost:{receiver.port}/hook",
            SECRET,
            b"{}",
            subscriber="crm",
            delivery_id="d1",
            attempt=1,
        )
    finally:
        await strict.aclose()
    assert not outcome.ok
    assert outcome.error.startswith("destination refused: localhost resolves to a loopback")
    assert receiver.requests == []


async def test_the_request_goes_to_the_checked_address_with_the_hosts_name(
    receiver: Receiver,
) -> None:
    sender = WebhookSender(
        timeout_seconds=5, ca_bundle=None, policy=DestinationPolicy.parse("127.0.0.0/8")
    )
    try:
        outcome = await sender.send(
            f"http://localhost:{receiver.port}/hook?code=abc",
            SECRET,
            b"{}",
            subscriber="crm",
            delivery_id="d1",
            attempt=1,
        )
    finally:
        await sender.aclose()
    assert outcome.status == 500
    assert receiver.requests[0]["Host"] == f"localhost:{receiver.port}"


async def test_a_receivers_answer_is_reported_by_status_only(receiver: Receiver) -> None:
    sender = WebhookSender(
        timeout_seconds=5, ca_bundle=None, policy=DestinationPolicy.parse("127.0.0.0/8")
    )
    try:
        answers = {}
        for status in (500, 404, 302, 299 + 200):
            receiver.status = status
            outcome = await sender.send(
                f"http://127.0.0.1:{receiver.port}/hook",
                SECRET,
                b"{}",
                subscriber="crm",
                delivery_id="d1",
                attempt=1,
            )
            answers[status] = outcome.error
    finally:
        await sender.aclose()
    assert answers == {
        500: "HTTP 500: Internal Server Error",
        404: "HTTP 404: Not Found",
        302: "HTTP 302: Found (redirects are not followed)",
        499: "HTTP 499: non-standard status",
    }
    assert not any("hunter2" in error or "Leaky" in error for error in answers.values())
