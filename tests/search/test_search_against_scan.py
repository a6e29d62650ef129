"""Every query's results equal a straightforward scan of the same profiles:
same set, same scores, best first, same matched fields, each exactly once."""

from __future__ import annotations

import random
from typing import Any

import pytest
from search_fixtures import db_url, index_in_own_db, tenant_profiles
from search_reference import matched_fields, scan

from services.common.redis_client import connect
from services.search import SearchIndex
from services.search.analysis import words
from services.search.query import parse

DB = 3

HANDWRITTEN = [
    "kubernetes",
    "Kubernetes",
    "KUBERNETES",
    "skills:kubernetes",
    "Skills:Kubernetes",
    "skill:kubernetes",
    "python",
    "skills:python",
    "aboutMe:python",
    "python azure",
    "skills:python skills:azure",
    '"machine learning"',
    'skills:"machine learning"',
    'aboutMe:"machine learning"',
    "machine learning",
    '"machine learning ops"',
    '"university of washington"',
    'schools:"university of washington"',
    "university of washington",
    '"of washington"',
    "kube*",
    "skills:kube*",
    "displayName:kube*",
    "mach*",
    "uni*",
    "azure OR aws",
    "skills:azure OR skills:aws OR skills:gcp",
    "python OR python",
    "python python",
    "python -java",
    "python NOT java",
    "kubernetes -skills:kubernetes",
    'engineering -"software engineer"',
    "department:engineering",
    'department:"research & development"',
    "research & development",
    "department:it",
    "zurich",
    "Zürich",
    "ZÜRICH",
    "munchen",
    "strasse",
    "angstrom",
    "zoe",
    "c#",
    "c++",
    "obrien",
    "o'brien",
    "node.js",
    "ci/cd",
    "3d",
    "apollo",
    "pastProjects:apollo",
    'pastProjects:"apollo migration"',
    "project:apollo*",
    "apollo kubernetes",
    "jobTitle:manager",
    "title:manager department:sales",
    "interests:photography OR interests:cycling",
    "hobbies:3d*",
    "displayName:adele OR displayName:adam",
    "name:garcía",
    "contoso years",
    '"i joined contoso"',
    'aboutMe:"i joined contoso"',
    '"big data lakes"',
    '"big data pipelines"',
    '"kubernetes operators guide"',
    'skills:"kubernetes operators"',
    '"university of washington bothell"',
    '"of washington bothell"',
    '"outside work you\'ll"',
    "nosuchwordanywhere",
    "nosuchword OR kubernetes",
    "kubernetes AND python",
    "-java python OR -python java",
]


def _random_queries(profiles: list[dict[str, Any]], count: int, seed: int) -> list[str]:
    """Queries built from real profiles, mixing every feature.

    Each group's terms come from one profile, so most groups match someone;
    exclusions come from another profile.
    """
    rng = random.Random(seed)
    fields = ["skills", "pastProjects", "schools", "interests", "jobTitle", "department"]
    fields += ["displayName", "aboutMe"]

    def term(profile: dict[str, Any]) -> str | None:
        field = rng.choice(fields)
        raw = profile[field]
        values = [raw] if isinstance(raw, str) else raw
        found = words(rng.choice(values)) if values else []
        if not found:
            return None
        start = rng.randrange(len(found))
        kind = rng.random()
        scoped = f"{field}:" if rng.random() < 0.4 else ""
        if kind < 0.45:
            return scoped + found[start]
        if kind < 0.75 and start + 1 < len(found):
            return scoped + '"' + " ".join(found[start : start + rng.randint(2, 3)]) + '"'
        if len(found[start]) >= 4:
            return scoped + found[start][: rng.randint(3, len(found[start]) - 1)] + "*"
        return scoped + found[start]

    queries = []
    while len(queries) < count:
        groups = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            profile = rng.choice(profiles)
            terms = [t for t in (term(profile) for _ in range(rng.choice([1, 1, 2, 3]))) if t]
            if terms and rng.random() < 0.2:
                excluded = term(rng.choice(profiles))
                if excluded:
                    terms.append("-" + excluded)
            if terms:
                groups.append(" ".join(terms))
        if groups:
            queries.append(" OR ".join(groups))
    return queries


@pytest.fixture(scope="module")
def indexed(redis_url: str, tenant: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tenant, indexed once for the module in its own database."""
    index_in_own_db(redis_url, DB, tenant)
    return tenant


async def _all_pages(index: SearchIndex, query: str, page_size: int) -> list[Any]:
    hits, token, totals = [], "", set()
    while True:
        page = await index.search(query, page_size, token)
        hits.extend(page.results)
        totals.add(page.total)
        token = page.next_page_token
        if not token:
            return hits
        assert len(totals) == 1, f"{query!r}: total changed between pages"


def _queries() -> list[str]:
    return HANDWRITTEN + _random_queries(tenant_profiles(), 80, seed=7)


@pytest.mark.parametrize("query", _queries())
async def test_results_equal_a_scan(
    indexed: list[dict[str, Any]], redis_url: str, query: str
) -> None:
    expected = scan(indexed, query)
    by_id = {p["id"]: p for p in indexed}
    client = connect(db_url(redis_url, DB))
    try:
        hits = await _all_pages(SearchIndex(client), query, page_size=37)
    finally:
        await client.aclose()
    ids = [h.profile["id"] for h in hits]
    assert len(ids) == len(set(ids)), "a profile came back twice"
    missing, extra = set(expected) - set(ids), set(ids) - set(expected)
    assert not missing and not extra, f"missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
    assert [h.score for h in hits] == [expected[i] for i in ids]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True), "not ranked best first"
    parsed = parse(query)
    for hit in hits:
        assert list(hit.matched_fields) == matched_fields(parsed, by_id[hit.profile["id"]])
        assert hit.profile == {k: v for k, v in by_id[hit.profile["id"]].items()}


def test_the_comparison_is_not_vacuous(tenant: list[dict[str, Any]]) -> None:
    """Handwritten queries find something unless meant not to, and several
    need more than one page at the test's page size."""
    empty = {q for q in HANDWRITTEN if not scan(tenant, q)}
    assert empty == {
        "aboutMe:python",
        '"big data lakes"',  # all its word pairs, never together
        '"kubernetes operators guide"',  # the pairs are in two different skills
        "nosuchwordanywhere",
    }
    assert sum(1 for q in HANDWRITTEN if len(scan(tenant, q)) > 37) >= 8
