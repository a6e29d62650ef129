"""Which fields of a found profile matched the query (for `matched_fields`).

Evaluated in Python on the page's profiles only (at most a page of them),
from the same analysis the index uses. A profile can match several OR
groups; the fields of every group it satisfies are reported. Each distinct
term is worked out once per profile, however many groups share it, and a
prefix is looked up in the field's sorted words, so a query of many OR'd
prefixes stays cheap.
"""

from __future__ import annotations

import bisect
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


class _Profile:
    """One profile's analysed fields, with what each distinct term matched."""

    def __init__(self, profile: Mapping[str, Any], fields: Sequence[str]) -> None:
        self._values = analyze_profile(profile, fields)
        self._sorted = {f: sorted({w for v in self._values[f] for w in v}) for f in fields}
        self._found: dict[tuple[str, tuple[str, ...], str | None], set[str]] = {}

    def _matches(self, term: Term, field: str) -> bool:
        if term.kind == "prefix":
            words, prefix = self._sorted[field], term.words[0]
            at = bisect.bisect_left(words, prefix)
            return at < len(words) and words[at].startswith(prefix)
        return any(term_matches(term, value) for value in self._values[field])

    def fields_of(self, term: Term) -> set[str]:
        key = (term.kind, term.words, term.field)
        if key not in self._found:
            scope = (term.field,) if term.field else SEARCH_FIELDS
            self._found[key] = {f for f in scope if self._matches(term, f)}
        return self._found[key]


def matched_fields(query: Query, profile: Mapping[str, Any]) -> list[str]:
    """Fields (in SEARCH_FIELDS order) where the required terms of a satisfied group matched."""
    # Only the fields some term looks at need analysing.
    needed = [f for f in SEARCH_FIELDS if any(t.field in (None, f) for t in query.terms)]
    analysed = _Profile(profile, needed)
    found: set[str] = set()
    for group in query.groups:
        if any(analysed.fields_of(t) for t in group.excluded):
            continue
        per_term = [analysed.fields_of(t) for t in group.required]
        if all(per_term):
            found.update(*per_term)
    return [f for f in SEARCH_FIELDS if f in found]
