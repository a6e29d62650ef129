"""Which fields of a found profile matched the query (for `matched_fields`).

Evaluated in Python on the page's profiles only (at most a page of them),
from the same analysis the index uses. A profile can match several OR
groups; the fields of every group it satisfies are reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.search.analysis import analyze_profile
from services.search.fields import SEARCH_FIELDS
from services.search.query import Query, Term

__all__ = ["matched_fields", "term_matches"]


def _contains(value: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(list(value[i : i + n]) == list(phrase) for i in range(len(value) - n + 1))


def term_matches(term: Term, value: Sequence[str]) -> bool:
    """Whether one analysed value (a skill, the About me text...) matches the term."""
    if term.kind == "prefix":
        return any(word.startswith(term.words[0]) for word in value)
    if len(term.words) == 1:
        return term.words[0] in value
    return _contains(value, term.words)


def _fields_of(term: Term, analysed: Mapping[str, list[list[str]]]) -> set[str]:
    scope = (term.field,) if term.field else SEARCH_FIELDS
    return {f for f in scope if any(term_matches(term, value) for value in analysed[f])}


def matched_fields(query: Query, profile: Mapping[str, Any]) -> list[str]:
    """Fields (in SEARCH_FIELDS order) where the required terms of a satisfied group matched."""
    # Only the fields some term looks at need analysing.
    needed = [f for f in SEARCH_FIELDS if any(t.field in (None, f) for t in query.terms)]
    analysed = analyze_profile(profile, needed)
    found: set[str] = set()
    for group in query.groups:
        if any(_fields_of(t, analysed) for t in group.excluded):
            continue
        per_term = [_fields_of(t, analysed) for t in group.required]
        if all(per_term):
            found.update(*per_term)
    return [f for f in SEARCH_FIELDS if f in found]
