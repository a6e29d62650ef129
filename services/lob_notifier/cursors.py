"""Cursor syntax: a cursor is a Redis stream entry id, `<milliseconds>-<sequence>`.

    is_valid_cursor("1700000000000-0")   # True
    is_valid_cursor("99999999999999999999-0")  # False: Redis ids are two 64-bit numbers

The proto's pattern already refuses most malformed cursors; this catches the
ones it lets through (numbers too large for Redis), which Redis would
otherwise answer with an error that looks like a server fault.
"""

from __future__ import annotations

import re

__all__ = ["OLDEST", "is_valid_cursor"]

# Reading after 0-0 reads from the oldest retained entry.
OLDEST = "0-0"

_CURSOR = re.compile(r"([0-9]+)-([0-9]+)")
_MAX_PART = 2**64 - 1


def is_valid_cursor(value: str) -> bool:
    match = _CURSOR.fullmatch(value)
    if match is None:
        return False
    return all(int(part) <= _MAX_PART for part in match.groups())
