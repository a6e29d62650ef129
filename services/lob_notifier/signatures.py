"""Webhook signatures: HMAC-SHA256 over the timestamp and the body.

    header = sign(secret, timestamp=int(time.time()), body=body)
    # "t=1700000000,v1=5257a869e7ec..."  (sent as X-ProfileSync-Signature)
    verify(secret, header, body)        # raises InvalidSignature, or returns the timestamp

The signed message is `<t>.<body>`: the timestamp as decimal text, a dot, then
the raw request body bytes. Signing the timestamp with the body lets a
receiver refuse a captured request replayed later (`tolerance_seconds`).
The receiver's guide, with a standalone example, is in docs/notifier.md.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "InvalidSignature",
    "sign",
    "signature",
    "verify",
]

SIGNATURE_HEADER = "X-ProfileSync-Signature"
# Five minutes: wider than clock skew between well-run hosts, narrow enough
# that a captured request is useless soon after.
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """The signature header is missing, malformed, stale or does not match."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` keyed with the secret."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-ProfileSync-Signature header value: `t=<timestamp>,v1=<hex signature>`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Checks a header made by `sign`; returns its timestamp."""
    if not header:
        raise InvalidSignature(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature(f"{SIGNATURE_HEADER} must be t=<unix seconds>,v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidSignature(f"timestamp {timestamp} is outside the {tolerance_seconds}s window")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise InvalidSignature("signature does not match the body")
    return timestamp
