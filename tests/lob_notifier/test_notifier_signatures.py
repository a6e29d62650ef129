"""Webhook signatures: what the notifier sends verifies with the documented receiver code."""

from __future__ import annotations

import time

import pytest
from notifier_receiver import documented_verifier

from services.lob_notifier.signatures import InvalidSignature, sign, signature, verify

SECRET = "a-webhook-secret-of-some-length"
BODY = b'{"subscriber":"crm","events":[{"eventId":"e1"}]}'


def test_the_header_is_timestamp_and_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    header = sign(SECRET, 1_700_000_000, BODY)

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert signature(SECRET, 1_700_000_000, BODY) == expected


def test_a_fresh_signature_verifies_in_both_implementations() -> None:
    now = time.time()
    header = sign(SECRET, int(now), BODY)

    assert verify(SECRET, header, BODY, now=now) == int(now)
    documented_verifier()(SECRET, header, BODY, now=now)


@pytest.mark.parametrize(
    ("case", "body", "secret", "now_offset"),
    [
        ("tampered body", BODY + b" ", SECRET, 0),
        ("wrong secret", BODY, "another-secret-entirely", 0),
        ("too old", BODY, SECRET, 301),
        ("from the future", BODY, SECRET, -301),
    ],
)
def test_tampering_replay_and_wrong_keys_are_refused(
    case: str, body: bytes, secret: str, now_offset: int
) -> None:
    signed_at = 1_700_000_000
    good = sign(SECRET, signed_at, BODY)
    now = signed_at + now_offset

    with pytest.raises(InvalidSignature):
        verify(secret, good, body, now=now)
    with pytest.raises(ValueError):
        documented_verifier()(secret, good, body, now=now)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=abc,v1=abc", "t=1700000000", "garbage"])
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=1_700_000_000)
    with pytest.raises(ValueError):
        documented_verifier()(SECRET, header, BODY, now=1_700_000_000)


def test_any_of_several_v1_signatures_may_match() -> None:
    # Room for sending two signatures while a secret is rotated.
    header = f"t=1700000000,v1={'0' * 64},v1={signature(SECRET, 1_700_000_000, BODY)}"

    verify(SECRET, header, BODY, now=1_700_000_000)
    documented_verifier()(SECRET, header, BODY, now=1_700_000_000)
