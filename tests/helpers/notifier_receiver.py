"""A webhook receiver for the tests: a real HTTP server on loopback.

    receiver = WebhookReceiver(secret)        # bound to a port, but refusing connections
    receiver.listen()                         # now it answers
    receiver.answers.extend([500, 500])       # the next two requests get 500, then 200s
    receiver.delivered_ids()                  # event ids of requests answered 2xx, in order

Deliveries are verified with the Python example from docs/notifier.md (the
Standard Webhooks library), so the documented procedure is what the tests
prove; a delivery that does not verify is answered 401.
"""

from __future__ import annotations

import json
import pathlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import WebhookVerificationError

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "notifier.md"


def documented_verifier() -> Callable[..., Any]:
    """`verify_delivery` as docs/notifier.md shows it to receivers."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"```python\n(# verify_webhook\.py.*?)```", text, re.DOTALL)
    assert match is not None, "docs/notifier.md lost its verify_webhook.py example"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(DOCS), "exec"), namespace)  # noqa: S102
    verify: Callable[..., Any] = namespace["verify_delivery"]
    return verify


@dataclass(frozen=True)
class Received:
    delivery_id: str
    attempt: int
    subscriber: str
    body: dict[str, Any]
    answered: int
    signature_error: str | None

    @property
    def event_ids(self) -> list[str]:
        return [event["eventId"] for event in self.body.get("events", [])]


class WebhookReceiver:
    def __init__(self, secret: str, *, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.answers: deque[int] = deque()
        # While set, every request gets this status.
        self.failing_with: int | None = None
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._verify = documented_verifier()
        self._server = ThreadingHTTPServer(
            ("127.0.0.1", 0), self._handler(), bind_and_activate=False
        )
        self._server.daemon_threads = True
        # Bound but not listening: connections are refused until listen().
        self._server.server_bind()
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/profiles"

    def listen(self) -> WebhookReceiver:
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.answered < 300]

    def delivered_ids(self) -> list[str]:
        return [event_id for request in self.accepted() for event_id in request.event_ids]

    def _answer(self, headers: Any, body: bytes) -> tuple[int, Received]:
        try:
            self._verify(self.secret, headers, body)
            signature_error = None
        except WebhookVerificationError as error:
            signature_error = str(error)
        with self._lock:
            if signature_error is not None:
                status = 401
            elif self.answers:
                status = self.answers.popleft()
            elif self.failing_with is not None:
                status = self.failing_with
            else:
                status = 200
            received = Received(
                delivery_id=headers.get("X-ProfileSync-Delivery", ""),
                attempt=int(headers.get("X-ProfileSync-Attempt", "0")),
                subscriber=headers.get("X-ProfileSync-Subscriber", ""),
                body=json.loads(body),
                answered=status,
                signature_error=signature_error,
            )
            self.requests.append(received)
        return status, received

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, _ = receiver._answer(self.headers, body)
                payload = b'{"ok": true}' if status < 300 else b'{"error": "try again"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
