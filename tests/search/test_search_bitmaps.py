"""The integer bitmaps and bit-sliced scores that searches combine outside Redis:
they read Redis' own bitmaps the right way round, and add up like integers."""

from __future__ import annotations

import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from services.search.bitmaps import Sliced, docs_of, from_bitmap, from_docs, from_members
from services.search.ranking import best

DOCS = st.lists(st.integers(0, 5000), max_size=300, unique=True).map(sorted)


async def test_a_redis_bitmap_reads_as_its_document_numbers(redis_client: aioredis.Redis) -> None:
    docs = [0, 1, 7, 8, 9, 63, 64, 1000, 4095]
    for doc in docs:
        await redis_client.setbit("test:bitmap", doc, 1)
    bitmap = from_bitmap(await redis_client.get("test:bitmap"))
    assert docs_of(bitmap) == docs
    assert from_bitmap(None) == 0


@given(DOCS, st.integers(1, 50))
def test_docs_round_trip(docs: list[int], limit: int) -> None:
    bitmap = from_docs(docs)
    assert docs_of(bitmap) == docs
    assert docs_of(bitmap, limit) == docs[:limit]
    assert bitmap.bit_count() == len(docs)


@given(DOCS, st.lists(st.booleans(), min_size=300, max_size=300))
def test_set_members_carry_whole_values(docs: list[int], whole: list[bool]) -> None:
    listed = ",".join(str(2 * d + w) for d, w in zip(docs, whole, strict=False))
    member, whole_values = from_members(listed.encode())
    assert docs_of(member) == docs
    assert docs_of(whole_values) == [d for d, w in zip(docs, whole, strict=False) if w]


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(1, 40), DOCS), min_size=1, max_size=6), st.integers(1, 25))
def test_sliced_scores_add_like_integers(adds: list[tuple[int, list[int]]], size: int) -> None:
    expected: dict[int, int] = {}
    scores, other = Sliced(), Sliced()
    for i, (points, docs) in enumerate(adds):
        (scores if i % 2 else other).add_const(points, from_docs(docs))
        for doc in docs:
            expected[doc] = expected.get(doc, 0) + points
    scores.add(other)
    pool = from_docs(sorted(expected))
    ranked = sorted(expected.items(), key=lambda item: (-item[1], item[0]))
    assert best(scores, pool, size) == ranked[:size]
