"""Paging: every result exactly once, opaque tokens that cannot be forged."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
import redis.asyncio as aioredis
from search_fixtures import as_profile
from search_reference import scan

from services.common.errors import InvalidArgument
from services.search import SearchHit, SearchIndex


async def _pages(index: SearchIndex, query: str, size: int) -> list[list[SearchHit]]:
    pages, token = [], ""
    while True:
        page = await index.search(query, size, token)
        pages.append(list(page.results))
        if not (token := page.next_page_token):
            return pages


def _ids(hits: list[SearchHit]) -> list[str]:
    return [h.profile["id"] for h in hits]


@pytest.fixture
async def index(redis_client: aioredis.Redis, tenant: list[dict[str, Any]]) -> SearchIndex:
    index = SearchIndex(redis_client)
    await index.apply(tenant, [])
    return index


@pytest.mark.parametrize(
    "query", ["university", "department:engineering", "ma* OR python", "zurich"]
)
async def test_every_result_comes_exactly_once_whatever_the_page_size(
    index: SearchIndex, tenant: list[dict[str, Any]], query: str
) -> None:
    expected = scan(tenant, query)
    orders = []
    for size in (1, 7, 20, 100):
        if size == 1 and len(expected) > 60:
            continue
        pages = await _pages(index, query, size)
        flat = [h for page in pages for h in page]
        assert sorted(_ids(flat)) == sorted(expected)
        assert all(len(page) == size for page in pages[:-1])
        assert 0 < len(pages[-1]) <= size or not expected
        orders.append(_ids(flat))
    assert all(order == orders[0] for order in orders), "the order depends on the page size"


async def test_the_last_page_has_no_token_and_no_match_gives_an_empty_page(
    index: SearchIndex,
) -> None:
    page = await index.search("nosuchwordanywhere", 20, "")
    assert (page.results, page.next_page_token, page.total) == ((), "", 0)
    page = await index.search('displayName:"kube admin"', 20, "")
    assert page.total == 1 and page.next_page_token == ""


async def test_pages_stay_consistent_while_profiles_change(
    index: SearchIndex, tenant: list[dict[str, Any]]
) -> None:
    query = "department:engineering OR university"
    first = await index.search(query, 25, "")
    seen = _ids(list(first.results))
    matching = scan(tenant, query)
    later = [p for p in tenant if p["id"] in matching and p["id"] not in seen]
    # Meanwhile: one profile of a later page is deleted, one is edited so it
    # no longer matches, and a new matching profile appears.
    removed, edited = later[10], copy.deepcopy(later[20])
    edited.update(department="Legal", schools=[], aboutMe="", jobTitle="Counsel")
    newcomer = as_profile(
        {"id": "new-user", "displayName": "New Person", "department": "Engineering"}
    )
    await index.apply([as_profile(edited), newcomer], [removed["id"]])

    token = first.next_page_token
    while token:
        page = await index.search(query, 25, token)
        seen += _ids(list(page.results))
        token = page.next_page_token
    assert len(seen) == len(set(seen)), "a profile came twice"
    # Everything unchanged that matched when paging started is seen.
    unchanged = set(matching) - {removed["id"], edited["id"]}
    assert unchanged <= set(seen)
    assert removed["id"] not in seen


async def test_paging_continues_after_the_last_profile_shown_is_deleted(
    index: SearchIndex, redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> None:
    # Every result of this query has the same score: the cursor relies on the
    # tie order, and the profile it points at is deleted before the next page.
    query = "department:engineering"
    expected = scan(tenant, query)
    assert len(set(expected.values())) == 1 and len(expected) > 25
    first = await index.search(query, 10, "")
    last = first.results[-1].profile["id"]
    await index.apply([], [last])
    seen = _ids(list(first.results))
    token = first.next_page_token
    while token:
        page = await index.search(query, 10, token)
        seen += _ids(list(page.results))
        token = page.next_page_token
    assert sorted(seen) == sorted(expected)


async def test_paging_survives_a_rebuild(index: SearchIndex, tenant: list[dict[str, Any]]) -> None:
    query = "university"
    first = await index.search(query, 30, "")

    async def source():  # type: ignore[no-untyped-def]
        for profile in tenant:
            yield profile

    await index.rebuild(source())
    seen = _ids(list(first.results))
    token = first.next_page_token
    while token:
        page = await index.search(query, 30, token)
        seen += _ids(list(page.results))
        token = page.next_page_token
    assert sorted(seen) == sorted(scan(tenant, query))


async def test_a_token_works_on_another_replica(
    index: SearchIndex, redis_client: aioredis.Redis
) -> None:
    first = await index.search("university", 10, "")
    other = SearchIndex(redis_client)
    second = await other.search("university", 10, first.next_page_token)
    assert set(_ids(list(first.results))).isdisjoint(_ids(list(second.results)))
    # An equivalent spelling of the query is the same query.
    third = await other.search("  UNIVERSITY ", 10, first.next_page_token)
    assert _ids(list(third.results)) == _ids(list(second.results))


async def test_tokens_cannot_be_altered_or_reused_for_another_query(index: SearchIndex) -> None:
    token = (await index.search("university", 10, "")).next_page_token
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[5] ^= 1
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in [altered, token[:-2], "not-a-token", "!!!", "a" * 40]:
        with pytest.raises(InvalidArgument, match=r"^pageToken: is not valid"):
            await index.search("university", 10, bad)
    with pytest.raises(InvalidArgument, match=r"^pageToken: belongs to a different query"):
        await index.search("python", 10, token)


@pytest.mark.parametrize("size", [0, -1, 101])
async def test_page_size_must_be_in_range(index: SearchIndex, size: int) -> None:
    with pytest.raises(InvalidArgument, match=rf"^pageSize: must be between 1 and 100, got {size}"):
        await index.search("university", size, "")
