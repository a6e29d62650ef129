"""Picking a page from scores held as bit planes (services/search/bitmaps.py).

Results rank by score, best first, then by document number. A later page
starts after the last result sent (its page token's cursor): a lower score,
or the same score and a higher number.

    pool = after_cursor(scores, matches, cursor) if cursor else matches
    page = best(scores, pool, 20)           # [(doc, score), ...] best first
"""

from __future__ import annotations

from services.search.bitmaps import Sliced, docs_of
from services.search.paging import Cursor

__all__ = ["after_cursor", "best"]


def after_cursor(score: Sliced, matches: int, cursor: Cursor) -> int:
    """The matches ranked after the cursor: a lower score, or the same and a higher number."""
    if cursor.score > score.max:
        return matches
    lower, same = 0, matches
    for j in range(score.width - 1, -1, -1):
        if not same:
            break
        one = same & score.plane(j)
        if cursor.score >> j & 1:
            lower |= same & ~one
            same = one
        else:
            same &= ~one
    return lower | (same >> (cursor.doc + 1) << (cursor.doc + 1))


def best(score: Sliced, pool: int, size: int) -> list[tuple[int, int]]:
    """The best `size` of the pool as (doc, score), best first: walk the score bits from
    the top, keeping the docs sure to be in and narrowing the ones still contending."""
    ahead: list[int] = []
    contending, need = pool, size
    for j in range(score.width - 1, -1, -1):
        plane = score.plane(j)
        if not plane:
            continue
        one = contending & plane
        n = one.bit_count()
        if n >= need:
            contending = one
            if n == need:
                break
        elif n > 0:
            ahead.append(one)
            contending &= ~one
            need -= n
    picked = [d for bitmap in ahead for d in docs_of(bitmap)] + docs_of(contending, need)
    planes = [p.to_bytes((p.bit_length() + 7) // 8, "little") for p in score.planes]

    def score_of(doc: int) -> int:
        byte, bit = doc >> 3, doc & 7
        return sum(1 << j for j, p in enumerate(planes) if byte < len(p) and p[byte] >> bit & 1)

    ranked = [(d, score_of(d)) for d in picked]
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked
