"""Secrets never show: the client secret, the emulator's private keys, webhook signing
secrets and every token the suite sent stay out of the process logs, the error
bodies and the metrics (this module runs after the attacks, and greps what the
stack printed during the whole security suite)."""

from __future__ import annotations

import http.server
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from secret_scan import find_leaks, scrape_metrics, stack_secrets
from security_tokens import ERROR_BODIES, SENT_TOKENS, issue

from devtools.devstack.stack import Stack
from services.lob_notifier.signatures import SIGNATURE_HEADER, verify

WEBHOOK_SECRET = "whsec-" + secrets.token_hex(24)
REFUSED_SECRET = "too-long-" + secrets.token_hex(150)  # over the 256-character limit


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A LOB app's webhook endpoint: fails the first delivery, accepts the rest."""

    deliveries: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.deliveries.append((dict(self.headers), body))
        self.send_response(500 if len(self.deliveries) == 1 else 200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/profiles"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def admin(security_stack: Stack) -> Iterator[httpx.Client]:
    token = issue(security_stack, roles=["Profiles.Read", "Profiles.Sync", "Subscribers.Manage"])
    with httpx.Client(
        base_url=security_stack.gateway_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        trust_env=False,
    ) as client:
        yield client


def remember(response: httpx.Response) -> httpx.Response:
    ERROR_BODIES.append(response.text)
    return response


def test_webhook_secrets_sign_deliveries_and_are_never_shown(
    security_stack: Stack, admin: httpx.Client, receiver: str, synced_users: list[dict[str, Any]]
) -> None:
    created = remember(
        admin.put(
            "/v1/subscribers/leak-check",
            json={"url": receiver, "secret": WEBHOOK_SECRET, "startAt": "START_OLDEST"},
        )
    )
    assert created.status_code == 200, created.text
    assert created.json()["hasSecret"] is True
    refused = remember(
        admin.put("/v1/subscribers/leak-check-2", json={"url": receiver, "secret": REFUSED_SECRET})
    )
    assert refused.status_code == 400 and "secret" in refused.json()["message"]
    # Deliveries are signed with the secret: a failed one is retried, then accepted.
    deadline = time.monotonic() + 120
    while len(_Receiver.deliveries) < 2:
        assert time.monotonic() < deadline, "no webhook retry arrived"
        time.sleep(0.2)
    headers, body = _Receiver.deliveries[-1]
    signature = next(v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower())
    verify(WEBHOOK_SECRET, signature, body)
    remember(admin.get("/v1/subscribers/leak-check"))
    remember(admin.get("/v1/subscribers"))


def test_an_update_on_behalf_of_a_user_goes_through(
    security_stack: Stack, synced_users: list[dict[str, Any]]
) -> None:
    """The on-behalf-of exchange (the user's token traded for a Graph token with the
    client secret) runs at least once in the suite, so its logging is covered."""
    user = synced_users[-1]
    token = issue(security_stack, user=user["userPrincipalName"])
    with httpx.Client(base_url=security_stack.gateway_url, timeout=60, trust_env=False) as http:
        response = http.patch(
            f"/v1/profiles/{user['id']}",
            json={"skills": ["Threat modelling"]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text


def test_no_secret_in_logs_error_bodies_or_metrics(
    security_stack: Stack, admin: httpx.Client
) -> None:
    places = {
        "process logs": security_stack.logs_text(),
        "error bodies": "\n".join(ERROR_BODIES),
        **scrape_metrics(security_stack),
    }
    assert places["process logs"]
    assert any("/metrics" in name for name in places)
    found = stack_secrets(
        security_stack,
        SENT_TOKENS,
        extra={"webhook secret": WEBHOOK_SECRET, "refused webhook secret": REFUSED_SECRET},
    )
    assert len(found) > 10
    assert find_leaks(found, places) == []
