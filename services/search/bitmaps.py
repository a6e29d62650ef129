"""Sets of profiles as Python integers, and scores as bit-sliced integers.

A search reads the index's bitmaps and sets out of Redis and combines them
here, outside Redis' single thread: bit `d` of an integer is the profile with
document number `d`.

    member = from_bitmap(redis_bitmap_bytes) | from_members(b"4,7")[0]  # docs 2 and 3
    scores = Sliced()
    scores.add_const(20, member)           # every member scores 20 more
    scores.planes                          # bit j of every score: [0, 0, member, 0, member]
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["Sliced", "docs_of", "from_bitmap", "from_docs", "from_members"]

# Redis numbers a bitmap's bits from the most significant bit of its first
# byte; reversing each byte makes doc d bit d of a little-endian integer.
_REVERSED: Final = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))
_NONZERO: Final = re.compile(rb"[^\x00]")
# b"0" -> 0 and b"1" -> 1, for itertools.compress.
_FLAGS: Final = bytes.maketrans(b"01", b"\x00\x01")
# The bits set in each byte value, low first.
_BITS: Final = tuple(tuple(b for b in range(8) if value >> b & 1) for value in range(256))


def from_bitmap(raw: bytes | None) -> int:
    """A Redis bitmap (GET of a SETBIT key) as an integer; None (no key) is empty."""
    return int.from_bytes(raw.translate(_REVERSED), "little") if raw else 0


def from_members(listed: bytes | str) -> tuple[int, int]:
    """A set of `2 x doc + whole` numbers, comma separated (the index's small
    entries, as the search scripts return them), as (members, whole values)."""
    if not listed:
        return 0, 0
    text = listed if isinstance(listed, bytes) else listed.encode()
    numbers = list(map(int, text.split(b",")))
    size = (max(numbers) >> 4) + 1
    member, whole = bytearray(size), bytearray(size)
    for n in numbers:
        doc = n >> 1
        member[doc >> 3] |= 1 << (doc & 7)
        if n & 1:
            whole[doc >> 3] |= 1 << (doc & 7)
    return int.from_bytes(member, "little"), int.from_bytes(whole, "little")


def from_docs(docs: Sequence[int]) -> int:
    """Document numbers as a bitmap."""
    if not docs:
        return 0
    bitmap = bytearray((max(docs) >> 3) + 1)
    for doc in docs:
        bitmap[doc >> 3] |= 1 << (doc & 7)
    return int.from_bytes(bitmap, "little")


def docs_of(bitmap: int, limit: int | None = None) -> list[int]:
    """The document numbers in `bitmap`, ascending (the first `limit` of them)."""
    if bitmap.bit_count() * 64 < bitmap.bit_length():
        # Sparse: visit the nonzero bytes only.
        raw = bitmap.to_bytes((bitmap.bit_length() + 7) // 8, "little")
        found: list[int] = []
        for match in _NONZERO.finditer(raw):
            at = match.start()
            found += [at * 8 + bit for bit in _BITS[raw[at]]]
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found
    # Dense: one flag byte per bit (lowest first), then pick the set ones in C.
    flags = bin(bitmap)[:1:-1].encode().translate(_FLAGS)
    picked = itertools.compress(range(len(flags)), flags)
    return list(picked if limit is None else itertools.islice(picked, limit))


class Sliced:
    """Every document's integer score at once: `planes[j]` is bit j of each score.

    Adding is a ripple-carry adder over whole bitmaps, so its cost depends on
    the number of profiles and the score's width, not on how many match.
    """

    def __init__(self, planes: list[int] | None = None, maximum: int = 0) -> None:
        self.planes: list[int] = planes or []
        self.max = maximum  # an upper bound of any score

    def copy(self) -> Sliced:
        return Sliced(list(self.planes), self.max)

    @property
    def width(self) -> int:
        return self.max.bit_length()

    def plane(self, j: int) -> int:
        return self.planes[j] if j < len(self.planes) else 0

    def _set(self, j: int, value: int) -> None:
        while len(self.planes) <= j:
            self.planes.append(0)
        self.planes[j] = value

    def add_const(self, c: int, bitmap: int) -> None:
        """Adds `c` to the score of every document in `bitmap`."""
        if c <= 0 or not bitmap:
            return
        self.max += c
        carry, rest = 0, c
        for j in range(self.width):
            if not carry and not rest:
                break
            a, b = self.plane(j), bitmap if rest & 1 else 0
            rest >>= 1
            self._set(j, a ^ b ^ carry)
            carry = (a & b) | (carry & (a ^ b))

    def add(self, other: Sliced) -> None:
        """Adds `other`'s scores document by document."""
        self.max += other.max
        carry = 0
        for j in range(self.width):
            a, b = self.plane(j), other.plane(j)
            if not carry and not b:
                continue
            self._set(j, a ^ b ^ carry)
            carry = (a & b) | (carry & (a ^ b))

    def masked(self, member: int) -> Sliced:
        """The scores of the documents in `member` only (others score 0)."""
        return Sliced([p & member for p in self.planes], self.max)
