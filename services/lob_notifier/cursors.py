"""Cursor syntax: a cursor is a Redis stream entry id, `<milliseconds>-<sequence>`.

    is_valid_cursor("1700000000000-0")   # True
    is_valid_cursor("99999999999999999999-0")  # False: Redis ids are two 64-bit numbers
    cursor_key("1700000000000-2") < cursor_key("1700000000001-0")  # True: compare as numbers
    normalized("007-01")  # "7-1", the form Redis itself writes

The proto's pattern already refuses most malformed cursors; this catches the
ones it lets through (numbers too large for Redis), which Redis would
otherwise answer with an error that looks like a server fault.
"""

from __future__ import annotations

import re

__all__ = ["OLDEST", "cursor_key", "is_valid_cursor", "normalized"]

# Reading after 0-0 reads from the oldest retained entry.
OLDEST = "0-0"

_CURSOR = re.compile(r"([0-9]+)-([0-9]+)")
_MAX_PART = 2**64 - 1


def is_valid_cursor(value: str) -> bool:
    match = _CURSOR.fullmatch(value)
    if match is None:
        return False
    return all(int(part) <= _MAX_PART for part in match.groups())


def cursor_key(value: str) -> tuple[int, int]:
    """The cursor as a pair of numbers, for ordering; "" sorts as 0-0."""
    if not value:
        return (0, 0)
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def normalized(value: str) -> str:
    """Without leading zeros, so equal cursors are equal strings (Redis's own form)."""
    ms, seq = cursor_key(value)
    return f"{ms}-{seq}"
