"""One query's budget: repeats merged, limits across the whole query, and a
time limit. The attacks: a phrase repeated 14 times, 32 OR'd prefixes, a
query that looks up every field for many words, a phrase with many candidate
profiles, a query that runs long. Accepted queries answer what the reference
scan answers; refusals are INVALID_ARGUMENT naming the limit and where the
query crosses it. (How fast the worst of them are is `make bench`'s to say:
bench/search_latency.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from search_fixtures import db_url, index_in_own_db
from search_reference import scan

from services.common.redis_client import connect
from services.search import IndexSettings, QuerySyntaxError, SearchIndex, evaluate, redis_keys
from services.search.analysis import profile_texts
from services.search.evaluate import SearchTimedOut

DB = 5
PHRASE = '"i joined contoso"'


@pytest.fixture(scope="module")
def indexed(redis_url: str, tenant: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tenant, indexed once for the module in its own database."""
    index_in_own_db(redis_url, DB, tenant)
    return tenant


@pytest.fixture
async def client(redis_url: str, indexed: list[dict[str, Any]]) -> AsyncIterator[aioredis.Redis]:
    redis = connect(db_url(redis_url, DB))
    try:
        yield redis
    finally:
        await redis.aclose()


def _vocabulary(profiles: list[dict[str, Any]]) -> list[str]:
    """Every word the index's word list holds for these profiles, sorted."""
    found: set[str] = set()
    for profile in profiles:
        for text in profile_texts(profile):
            found.update(w for w in text.split() if w != "|")
    return sorted(found)


def _prefixes(vocabulary: list[str], count: int) -> list[tuple[str, int]]:
    """`count` distinct three-letter prefixes of real words, with how many words each matches."""
    expansions: dict[str, int] = {}
    for word in vocabulary:
        if len(word) > 3 and word[:3].isalpha():
            expansions[word[:3]] = expansions.get(word[:3], 0) + 1
    broad = sorted(expansions.items(), key=lambda item: (-item[1], item[0]))
    return broad[:count]


async def _source(profiles: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for profile in profiles:
        yield profile


async def _everything(index: SearchIndex, query: str) -> dict[str, float]:
    found: dict[str, float] = {}
    token = ""
    while True:
        page = await index.search(query, 100, token)
        found.update((h.profile["id"], h.score) for h in page.results)
        token = page.next_page_token
        if not token:
            return found


async def test_a_phrase_repeated_14_times_counts_once(
    client: aioredis.Redis, indexed: list[dict[str, Any]]
) -> None:
    index = SearchIndex(client)
    repeated = " ".join([PHRASE] * 14)
    assert len(repeated) > 250
    once = scan(indexed, PHRASE)
    assert len(once) > 40  # a common phrase: checking it is real work
    assert scan(indexed, repeated) == once  # the documented rule, as the reference applies it
    assert await _everything(index, repeated) == once
    # One query for paging: a token of the long spelling continues the short one.
    first = await index.search(repeated, 10, "")
    second = await index.search(PHRASE, 10, first.next_page_token)
    expected = sorted(once.items(), key=lambda item: -item[1])
    assert len(second.results) == 10 and first.total == second.total == len(once)
    assert {h.score for h in second.results} <= {score for _, score in expected[10:30]}


@pytest.mark.parametrize(
    ("query", "same_as"),
    [
        ("python OR python OR python", "python"),
        ("kube* python OR python kube* OR kube* python kube*", "kube* python"),
        ("skills:python skill:python Skills:Python -java -java", "skills:python -java"),
    ],
)
async def test_repeated_terms_and_groups_count_once(
    client: aioredis.Redis, indexed: list[dict[str, Any]], query: str, same_as: str
) -> None:
    expected = scan(indexed, same_as)
    assert expected
    assert scan(indexed, query) == expected
    assert await _everything(SearchIndex(client), query) == expected


async def test_32_ored_prefixes_within_the_budget_answer_as_the_scan(
    client: aioredis.Redis, indexed: list[dict[str, Any]]
) -> None:
    prefixes = _prefixes(_vocabulary(indexed), 32)
    query = " OR ".join(f"{p}*" for p, _ in prefixes)
    words = sum(n for _, n in prefixes)
    assert words <= IndexSettings().max_prefix_words
    assert await _everything(SearchIndex(client), query) == scan(indexed, query)


async def test_prefixes_share_one_expansion_limit(
    client: aioredis.Redis, indexed: list[dict[str, Any]]
) -> None:
    prefixes = _prefixes(_vocabulary(indexed), 32)
    query = " OR ".join(f"{p}*" for p, _ in prefixes)
    # A limit every prefix keeps alone, that the query passes at its 11th prefix.
    limit = sum(n for _, n in prefixes[:10]) + prefixes[10][1] - 1
    assert all(n <= limit for _, n in prefixes)
    index = SearchIndex(client, IndexSettings(max_prefix_words=limit))
    with pytest.raises(QuerySyntaxError) as refused:
        await index.search(query, 20, "")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    position = query.index(f"{prefixes[10][0]}*")
    assert str(refused.value) == (
        f"query: the prefixes match too many words together at position {position}; "
        f"more than {limit} in all; use fewer prefixes or add letters to them"
    )
    # The first ten alone are within it.
    first_ten = " OR ".join(f"{p}*" for p, _ in prefixes[:10])
    assert await _everything(index, first_ten) == scan(indexed, first_ten)


async def test_lookups_are_counted_over_the_whole_query(
    client: aioredis.Redis, indexed: list[dict[str, Any]]
) -> None:
    # Each word without a field looks in all eight fields: 8, 16, then 24 lookups.
    index = SearchIndex(client, IndexSettings(max_lookups=20))
    query = "python azure kubernetes"
    with pytest.raises(QuerySyntaxError) as refused:
        await index.search(query, 20, "")
    assert str(refused.value) == (
        "query: the query looks up too many index entries at position 13; more than 20 "
        "(each word, pair and prefix expansion in each field searched); name a field, "
        "e.g. skills:..., or use fewer terms"
    )
    # Repeats are merged before counting; naming fields makes it cheap.
    for cheap in ("python azure python azure", "skills:python skills:azure skills:kubernetes"):
        assert await _everything(index, cheap) == scan(indexed, cheap)


async def test_phrase_checks_are_capped(
    client: aioredis.Redis, indexed: list[dict[str, Any]]
) -> None:
    index = SearchIndex(client, IndexSettings(max_phrase_checks=10))
    query = f"python OR {PHRASE}"
    with pytest.raises(QuerySyntaxError) as refused:
        await index.search(query, 20, "")
    assert str(refused.value) == (
        'query: phrase "i joined contoso" needs too many profiles checked at position 10; '
        "more than 10 profiles have all its word pairs; name a field or add a word that "
        "narrows it"
    )
    roomy = SearchIndex(client, IndexSettings(max_phrase_checks=len(indexed)))
    assert await _everything(roomy, query) == scan(indexed, query)


async def test_a_search_past_its_time_limit_stops(client: aioredis.Redis) -> None:
    index = SearchIndex(client)
    with pytest.raises(SearchTimedOut) as stopped:
        await index.search(PHRASE, 20, "", time_limit=0.0)
    assert stopped.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert str(stopped.value).startswith("query: stopped after 0 s, the time it may take")
    settings = IndexSettings(max_query_seconds=0.0)
    with pytest.raises(SearchTimedOut):
        await SearchIndex(client, settings).search(PHRASE, 20, "", time_limit=30.0)


async def test_a_search_writes_nothing(client: aioredis.Redis) -> None:
    """Searches only read, so one stopped at any point leaves nothing behind, and
    Redis can stop any of its short scripts (SCRIPT KILL works on read-only ones)."""
    before = sorted(await client.keys("*"))
    epoch = await client.get(redis_keys.EPOCH)
    index = SearchIndex(client)
    await index.search(f"{PHRASE} OR kube* -python OR skills:azure", 20, "")
    assert sorted(await client.keys("*")) == before
    assert await client.get(redis_keys.EPOCH) == epoch


async def test_reads_are_capped_across_the_query(
    client: aioredis.Redis, indexed: list[dict[str, Any]]
) -> None:
    prefixes = _prefixes(_vocabulary(indexed), 31)
    query = "skills:python OR " + " OR ".join(f"{p}*" for p, _ in prefixes)
    index = SearchIndex(client, IndexSettings(max_read_cost=300))
    with pytest.raises(QuerySyntaxError) as refused:
        await index.search(query, 20, "")
    message = str(refused.value)
    assert message.startswith("query: the query's terms are filed under too many profiles")
    assert "reading them costs more than 300" in message
    # The prefix where the reads pass the limit is named, and what comes before it is fine.
    position = int(message.split(" at position ")[1].split(";")[0])
    assert query[position:].split(" ")[0].endswith("*")
    before = query[:position].removesuffix(" OR ")
    assert before
    assert await _everything(index, before) == scan(indexed, before)


async def test_searches_during_writes_answer_for_the_profiles_not_changing(
    redis_url: str, tenant: list[dict[str, Any]]
) -> None:
    """A search reads in several steps; one that overlaps a write runs again. While
    another client keeps re-indexing a few profiles (and a rebuild swaps the whole
    index), the profiles that stay the same are always found exactly as the scan
    finds them."""
    client, writer_client = connect(db_url(redis_url, DB + 1)), connect(db_url(redis_url, DB + 1))
    try:
        await client.flushdb()
        stable, moving = tenant[:300], tenant[300:320]
        writer = SearchIndex(writer_client)
        await writer.apply(stable + moving, [])
        index = SearchIndex(client)
        queries = ["python", f"{PHRASE} OR kube*", "skills:azure -java", "uni*"]
        done = asyncio.Event()

        async def keep_writing() -> None:
            round_ = 0
            while not done.is_set():
                round_ += 1
                changed = [dict(p, skills=[*p["skills"], f"Skill{round_}"]) for p in moving]
                await writer.apply(changed, [])

                if round_ % 5 == 0:
                    await writer.rebuild(_source(stable + changed))
                await asyncio.sleep(0)

        writing = asyncio.create_task(keep_writing())
        try:
            stable_ids = {p["id"] for p in stable}
            for _ in range(3):
                for query in queries:
                    found = await _everything(index, query)
                    expected = scan(stable, query)
                    assert {i: s for i, s in found.items() if i in stable_ids} == expected, query
        finally:
            done.set()
            await writing
    finally:
        await client.aclose()
        await writer_client.aclose()


@pytest.mark.parametrize("query", ["python", "uni* -azure", f"{PHRASE} OR skills:kube*"])
async def test_entries_of_many_profiles_read_a_page_at_a_time_answer_the_same(
    client: aioredis.Redis,
    indexed: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    query: str,
) -> None:
    """At a million profiles a set holds thousands; those are read with SSCAN pages
    rather than in one reply. Here the threshold is lowered so the test tenant's
    entries take that path (and several pages)."""
    monkeypatch.setattr(evaluate, "_SCRIPT_SET_LIMIT", 5)
    monkeypatch.setattr(evaluate, "_SET_PAGE", 7)
    assert await _everything(SearchIndex(client), query) == scan(indexed, query)
