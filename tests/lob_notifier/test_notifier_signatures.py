"""Webhook signatures: what the notifier sends verifies with the Standard Webhooks library
through the receiver code docs/notifier.md shows, and nothing tampered, stale or keyed
otherwise does. The specification: https://www.standardwebhooks.com/ (its `spec/` folder
defines `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` and `whsec_`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pytest
from notifier_receiver import documented_verifier
from standardwebhooks.webhooks import WebhookVerificationError

from profilesync.v1 import notifier_pb2
from services.lob_notifier.signatures import (
    InvalidSignature,
    sign,
    signature,
    standard_headers,
    verify,
)
from services.lob_notifier.subscriber_rules import secret_problem

PLAIN_SECRET = "a-webhook-secret-of-some-length"
STANDARD_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
BODY = b'{"subscriber":"crm","events":[{"eventId":"e1"}]}'
DELIVERY = "9f2c51d0a8e54b7a2d3e1f6c7b8a9d0e"


def test_the_signature_is_the_base64_hmac_of_id_timestamp_and_body() -> None:
    headers = standard_headers(STANDARD_SECRET, DELIVERY, 1_700_000_000, BODY)

    key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    signed = f"{DELIVERY}.1700000000.".encode() + BODY
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers == {
        "webhook-id": DELIVERY,
        "webhook-timestamp": "1700000000",
        "webhook-signature": f"v1,{expected}",
    }


@pytest.mark.parametrize("secret", [STANDARD_SECRET, PLAIN_SECRET], ids=["whsec", "plain"])
def test_a_fresh_delivery_verifies_with_the_library(secret: str) -> None:
    headers = standard_headers(secret, DELIVERY, int(time.time()), BODY)

    assert documented_verifier()(secret, headers, BODY) == {
        "subscriber": "crm",
        "events": [{"eventId": "e1"}],
    }


@pytest.mark.parametrize(
    ("case", "body", "secret", "age_seconds", "header_change"),
    [
        ("tampered body", BODY.replace(b"e1", b"e2"), STANDARD_SECRET, 0, {}),
        ("wrong secret", BODY, "whsec_" + base64.b64encode(b"x" * 32).decode(), 0, {}),
        ("stale timestamp", BODY, STANDARD_SECRET, 301, {}),
        ("from the future", BODY, STANDARD_SECRET, -301, {}),
        ("another delivery id", BODY, STANDARD_SECRET, 0, {"webhook-id": "other"}),
        ("no signature", BODY, STANDARD_SECRET, 0, {"webhook-signature": ""}),
    ],
)
def test_tampering_replay_and_wrong_keys_are_refused(
    case: str, body: bytes, secret: str, age_seconds: int, header_change: dict[str, str]
) -> None:
    headers = standard_headers(STANDARD_SECRET, DELIVERY, int(time.time()) - age_seconds, BODY)
    headers.update(header_change)

    with pytest.raises(WebhookVerificationError):
        documented_verifier()(secret, headers, body)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_not base64!!", "must continue in base64"),
        ("whsec_" + base64.b64encode(b"sixteen-bytes!!!").decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(b"k" * 65).decode(), "24 to 64 bytes"),
        ("short", "16 to 256 characters"),
    ],
)
def test_malformed_secrets_are_refused(secret: str, problem: str) -> None:
    found = secret_problem(secret)
    assert found is not None and problem in found


async def test_a_malformed_whsec_secret_is_refused_with_400(notifier) -> None:  # type: ignore[no-untyped-def]
    import grpc

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notifier.PutSubscriber(
            notifier_pb2.PutSubscriberRequest(
                name="crm", url="https://lob.example.com/hook", secret="whsec_" + "A" * 12
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "secret: a whsec_ secret must hold 24 to 64 bytes" in (caught.value.details() or "")


# The older X-ProfileSync-Signature header is still sent, for receivers written against it.
def test_the_older_header_is_timestamp_and_hex_hmac_of_timestamp_dot_body() -> None:
    header = sign(PLAIN_SECRET, 1_700_000_000, BODY)

    expected = hmac.new(PLAIN_SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert signature(PLAIN_SECRET, 1_700_000_000, BODY) == expected
    assert verify(PLAIN_SECRET, header, BODY, now=1_700_000_000) == 1_700_000_000


@pytest.mark.parametrize(
    ("body", "secret", "now_offset"),
    [
        (BODY + b" ", PLAIN_SECRET, 0),
        (BODY, "another-secret-entirely", 0),
        (BODY, PLAIN_SECRET, 301),
    ],
)
def test_the_older_header_refuses_tampering_and_replay(
    body: bytes, secret: str, now_offset: int
) -> None:
    good = sign(PLAIN_SECRET, 1_700_000_000, BODY)
    with pytest.raises(InvalidSignature):
        verify(secret, good, body, now=1_700_000_000 + now_offset)
