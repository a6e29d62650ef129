"""Limits a user can run into: over-broad prefixes, and what is searchable."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.search import IndexSettings, QuerySyntaxError, SearchIndex

PROFILES = [
    {"id": "a", "skills": ["Kubernetes", "Kubectl", "Kudu", "Kustomize"], "displayName": "Ann"},
    {"id": "b", "skills": ["Python"], "displayName": "Bob", "mail": "kubernetes@contoso.com"},
]


@pytest.fixture
async def index(redis_client: aioredis.Redis) -> SearchIndex:
    index = SearchIndex(redis_client, IndexSettings(max_prefix_words=3))
    await index.apply(PROFILES, [])
    return index


@pytest.mark.parametrize(
    ("query", "position"),
    [
        ("ku*", 0),
        ("python OR skills:ku*", 10),
        ("python -ku*", 7),
        ("nosuchword ku*", 11),  # reported even though the group matches nothing
    ],
)
async def test_a_prefix_matching_too_many_words_is_refused(
    index: SearchIndex, query: str, position: int
) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        await index.search(query, 10, "")
    assert str(caught.value) == (
        f"query: prefix 'ku*' matches too many words at position {position}; "
        "more than 3; add letters to narrow it"
    )


async def test_a_narrower_prefix_is_fine(index: SearchIndex) -> None:
    page = await index.search("kub*", 10, "")
    assert [h.profile["id"] for h in page.results] == ["a"]


async def test_mail_is_not_searchable(index: SearchIndex) -> None:
    page = await index.search("kubernetes", 10, "")
    assert [h.profile["id"] for h in page.results] == ["a"]
