"""The embedded default falls back to fakeredis where no redis-server is
installed; search must work there too (same results as real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import fakeredis
from search_reference import scan

from services.search import SearchIndex

QUERIES = [
    "university",
    'skills:"machine learning"',
    "kube* OR azure",
    "python -java",
    '"i joined contoso"',
]


async def test_search_works_on_fakeredis(tenant: list[dict[str, Any]]) -> None:
    client = fakeredis.FakeAsyncRedis()
    try:
        index = SearchIndex(client)
        profiles = tenant[:150]
        await index.apply(profiles, [])
        for query in QUERIES:
            page = await index.search(query, 100, "")
            assert {h.profile["id"]: h.score for h in page.results} == scan(profiles, query), query

        async def source() -> AsyncIterator[dict[str, Any]]:
            for profile in tenant[100:200]:
                yield profile

        await index.rebuild(source())
        await index.apply([], [tenant[150]["id"]])
        remaining = [p for p in tenant[100:200] if p["id"] != tenant[150]["id"]]
        page = await index.search("university", 100, "")
        assert {h.profile["id"] for h in page.results} == set(scan(remaining, "university"))
    finally:
        await client.aclose()
