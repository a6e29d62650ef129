"""One webhook request: the JSON body of a batch, its signature, the POST.

    sender = WebhookSender(timeout_seconds=10, ca_bundle=None)
    body = batch_body("crm", delivery_id, events)
    outcome = await sender.send(url, secret, body, subscriber="crm",
                                delivery_id=delivery_id, attempt=1)
    outcome.ok, outcome.error, outcome.retry_after

The body (JSON, UTF-8):

    {"subscriber": "crm", "deliveryId": "9f2c...", "cursor": "<last event's cursor>",
     "events": [<ChangeEvent as the REST API shows it>, ...]}

Headers: Content-Type, User-Agent, X-ProfileSync-Signature (signatures.py),
X-ProfileSync-Delivery (the same on every attempt of a batch, and on a
replay), X-ProfileSync-Subscriber, X-ProfileSync-Attempt (1, 2, ...).
Any 2xx is success; anything else, a timeout or a connection error is a
failed attempt. Redirects are not followed: a receiver that moved must be
given its new URL.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from google.protobuf import json_format

from profilesync.v1.notifier_pb2 import ChangeEvent
from services.common.tls import client_ssl_context
from services.lob_notifier.signatures import SIGNATURE_HEADER, sign

__all__ = ["Outcome", "WebhookSender", "batch_body", "event_json"]

USER_AGENT = "profile-sync-notifier/1"
# Enough of an error answer to recognise it in the delivery status.
_ERROR_BODY_CHARS = 200


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str
    # Seconds the receiver asked us to wait (Retry-After), if it did.
    retry_after: float | None
    seconds: float


def event_json(event: ChangeEvent) -> dict[str, Any]:
    """The event as the REST API shows it (lowerCamelCase, every field present)."""
    shown: dict[str, Any] = json_format.MessageToDict(
        event, always_print_fields_with_no_presence=True
    )
    return shown


def batch_body(subscriber: str, delivery_id: str, events: Sequence[dict[str, Any]]) -> bytes:
    document = {
        "subscriber": subscriber,
        "deliveryId": delivery_id,
        "cursor": events[-1]["cursor"] if events else "",
        "events": list(events),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _ERROR_BODY_CHARS else flat[:_ERROR_BODY_CHARS] + "..."


class WebhookSender:
    """POSTs signed batches; one connection pool for every subscriber of this replica."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        ca_bundle: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._http = httpx.AsyncClient(
            timeout=timeout_seconds,
            verify=client_ssl_context(ca_bundle),
            # Receivers are reached directly; a proxy from the environment
            # would see every profile change.
            trust_env=False,
            follow_redirects=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        url: str,
        secret: str,
        body: bytes,
        *,
        subscriber: str,
        delivery_id: str,
        attempt: int,
    ) -> Outcome:
        # Signed afresh on every attempt, so a retry is inside the receiver's
        # replay window however long the backoff was.
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
            "X-ProfileSync-Delivery": delivery_id,
            "X-ProfileSync-Subscriber": subscriber,
            "X-ProfileSync-Attempt": str(attempt),
        }
        started = time.perf_counter()
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome(
                False,
                None,
                f"no answer within {self._timeout_seconds:g}s",
                None,
                time.perf_counter() - started,
            )
        except httpx.HTTPError as error:
            reason = str(error) or type(error).__name__
            return Outcome(
                False,
                None,
                f"cannot reach the receiver: {_short(reason)}",
                None,
                time.perf_counter() - started,
            )
        elapsed = time.perf_counter() - started
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code, "", None, elapsed)
        detail = _short(response.text) if response.content else response.reason_phrase
        return Outcome(
            False,
            response.status_code,
            f"HTTP {response.status_code}: {detail}".rstrip(": "),
            _retry_after(response.headers.get("retry-after")),
            elapsed,
        )
