"""What a subscriber's name, URL and secret must look like.

Shared by the API (PutSubscriber) and the subscribers file, so both refuse
the same things with the same words. Each check returns None when the value
is acceptable, or the problem as a sentence.

    url_problem("ftp://example.com/hook")  # "must be an http or https URL"
"""

from __future__ import annotations

import re
import urllib.parse

from services.lob_notifier.signatures import standard_secret_problem

__all__ = [
    "MAX_SECRET_LENGTH",
    "MIN_SECRET_LENGTH",
    "NAME_PATTERN",
    "name_problem",
    "secret_problem",
    "url_problem",
]

# The same pattern the proto declares on every `name` field.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# 128 bits of a random hex or base64 secret; shorter keys are guessable.
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 256
MAX_URL_LENGTH = 2048


def name_problem(name: str) -> str | None:
    if not NAME_PATTERN.fullmatch(name):
        return (
            "must be 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )
    return None


def url_problem(url: str) -> str | None:
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        return "must be an http or https URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL"
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL would show in status and logs; the signature
        # is how a receiver knows the notifier.
        return "must not carry a user name or password"
    if parts.fragment:
        return "must not have a #fragment"
    if any(ch.isspace() for ch in url):
        return "must not contain spaces"
    return None


def secret_problem(secret: str) -> str | None:
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        return f"must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters, got {len(secret)}"
    return standard_secret_problem(secret)
