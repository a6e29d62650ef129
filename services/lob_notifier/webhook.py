"""One webhook request: the JSON body of a batch, its signature, the POST.

    sender = WebhookSender(timeout_seconds=10, ca_bundle=None)
    body = batch_body("crm", delivery_id, events)
    outcome = await sender.send(url, secret, body, subscriber="crm",
                                delivery_id=delivery_id, attempt=1)
    outcome.ok, outcome.error, outcome.retry_after

The body (JSON, UTF-8):

    {"subscriber": "crm", "deliveryId": "9f2c...", "cursor": "<last event's cursor>",
     "events": [<ChangeEvent as the REST API shows it>, ...]}

Headers: Content-Type, User-Agent; the Standard Webhooks trio `webhook-id`
(the delivery id), `webhook-timestamp`, `webhook-signature` (signatures.py);
X-ProfileSync-Signature (the older signature), X-ProfileSync-Delivery (the
same on every attempt of a batch, and on a replay), X-ProfileSync-Subscriber,
X-ProfileSync-Attempt (1, 2, ...).

Any 2xx is success; anything else, a timeout or a connection error is a
failed attempt. Redirects are not followed: a receiver that moved must be
given its new URL. The destination is checked (destinations.py) before each
attempt and the request goes to the address checked.

What a failed attempt records (`lastError`, readable by `Profiles.Read`) is
the status code with its standard reason, or a fixed sentence: never what
the receiver sent, so a subscriber's URL cannot be used to read a body from
somewhere the notifier can reach.
"""

from __future__ import annotations

import email.utils
import http
import ipaddress
import json
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from google.protobuf import json_format

from profilesync.v1.notifier_pb2 import ChangeEvent
from services.common.tls import client_ssl_context
from services.lob_notifier.destinations import DestinationPolicy, Refused
from services.lob_notifier.signatures import SIGNATURE_HEADER, sign, standard_headers

if TYPE_CHECKING:
    from services.lob_notifier.settings import DeliverySettings

__all__ = ["Outcome", "WebhookSender", "batch_body", "event_json"]

USER_AGENT = "profile-sync-notifier/1"


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


def _status_text(status: int) -> str:
    """`HTTP <code>: <standard reason>`: the receiver's own words are never kept."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "non-standard status"
    text = f"HTTP {status}: {phrase}"
    if 300 <= status < 400:
        text += " (redirects are not followed)"
    return text


def _tls_failed(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _failure_text(error: httpx.HTTPError) -> str:
    """A fixed sentence per kind of failure (no text from the other side)."""
    if isinstance(error, httpx.ConnectError):
        if _tls_failed(error):
            return "cannot reach the receiver: the TLS handshake failed"
        return "cannot reach the receiver: the connection was refused or failed"
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return "the receiver closed the connection or answered malformed HTTP"
    return f"the request failed ({type(error).__name__})"


class WebhookSender:
    """POSTs signed batches; one connection pool for every subscriber of this replica."""

    @classmethod
    def for_delivery(cls, settings: DeliverySettings) -> WebhookSender:
        """The sender the delivery settings describe: timeout, CA bundle, destinations."""
        return cls(
            timeout_seconds=settings.timeout_seconds,
            ca_bundle=settings.ca_bundle,
            policy=settings.destinations,
        )

    def __init__(
        self,
        *,
        timeout_seconds: float,
        ca_bundle: str | None,
        policy: DestinationPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._policy = policy or DestinationPolicy()
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
        started = time.perf_counter()
        try:
            target = await self._policy.resolve(url)
        except Refused as refusal:
            return Outcome(
                False, None, f"destination refused: {refusal}", None, time.perf_counter() - started
            )
        # Signed afresh on every attempt, so a retry is inside the receiver's
        # replay window however long the backoff was.
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": target.host_header,
            **standard_headers(secret, delivery_id, now, body),
            SIGNATURE_HEADER: sign(secret, now, body),
            "X-ProfileSync-Delivery": delivery_id,
            "X-ProfileSync-Subscriber": subscriber,
            "X-ProfileSync-Attempt": str(attempt),
        }
        extensions = {}
        if target.url.startswith("https:") and not _is_address(target.host):
            # The connection goes to the checked address; TLS still checks the name.
            extensions["sni_hostname"] = target.host
        try:
            response = await self._http.post(
                target.url, content=body, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException:
            return Outcome(
                False,
                None,
                f"no answer within {self._timeout_seconds:g}s",
                None,
                time.perf_counter() - started,
            )
        except httpx.HTTPError as error:
            return Outcome(False, None, _failure_text(error), None, time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        if 200 <= response.status_code < 300:
            return Outcome(True, response.status_code, "", None, elapsed)
        return Outcome(
            False,
            response.status_code,
            _status_text(response.status_code),
            _retry_after(response.headers.get("retry-after")),
            elapsed,
        )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
