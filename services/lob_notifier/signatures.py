"""Webhook signatures, as the Standard Webhooks specification has them, and the
older X-ProfileSync-Signature (kept for receivers written against it).

    headers = standard_headers(secret, delivery_id, timestamp=int(time.time()), body=body)
    # {"webhook-id": delivery_id, "webhook-timestamp": "1700000000",
    #  "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}

Standard Webhooks (https://www.standardwebhooks.com/, maintained verifiers
for Python, TypeScript, Go, Java, C#, ...): the signature is the base64
HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the
secret's bytes: for a secret `whsec_<base64>` (the specification's format),
the decoded base64; for any other secret, its UTF-8 bytes (a receiver passes
those bytes to its verifier: `Webhook(secret.encode())` in Python).

The older header:

    header = sign(secret, timestamp=int(time.time()), body=body)
    # "t=1700000000,v1=5257a869e7ec..."  (sent as X-ProfileSync-Signature)
    verify(secret, header, body)        # raises InvalidSignature, or returns the timestamp

The signed message is `<t>.<body>`: the timestamp as decimal text, a dot, then
the raw request body bytes. Signing the timestamp with the body lets a
receiver refuse a captured request replayed later (`tolerance_seconds`).
The receiver's guide, with a standalone example, is in docs/notifier.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "STANDARD_SECRET_PREFIX",
    "InvalidSignature",
    "sign",
    "signature",
    "signing_key",
    "standard_headers",
    "standard_secret_problem",
    "verify",
]

STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105  # a prefix, not a secret
# The specification's bounds on a secret's key bytes.
STANDARD_KEY_BYTES = (24, 64)

SIGNATURE_HEADER = "X-ProfileSync-Signature"
# Five minutes: wider than clock skew between well-run hosts, narrow enough
# that a captured request is useless soon after.
DEFAULT_TOLERANCE_SECONDS = 300


def standard_secret_problem(secret: str) -> str | None:
    """What is wrong with a `whsec_` secret, or None (other secrets are not checked here)."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret[len(STANDARD_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return f"a {STANDARD_SECRET_PREFIX} secret must continue in base64"
    low, high = STANDARD_KEY_BYTES
    if not low <= len(key) <= high:
        return f"a {STANDARD_SECRET_PREFIX} secret must hold {low} to {high} bytes, got {len(key)}"
    return None


def signing_key(secret: str) -> bytes:
    """The HMAC key of Standard Webhooks signatures for this secret (see the module doc)."""
    if secret.startswith(STANDARD_SECRET_PREFIX):
        return base64.b64decode(secret[len(STANDARD_SECRET_PREFIX) :])
    return secret.encode("utf-8")


def standard_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one request."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


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
