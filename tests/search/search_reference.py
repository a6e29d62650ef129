"""A straightforward scan that answers a query the slow, obvious way.

Tests compare the Redis index against it: for every profile, analyse the
fields and apply the documented rules (docs/search.md) directly. It shares
only the parser and the word splitting with the code under test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.search.analysis import words
from services.search.query import Group, Query, Term, parse

WEIGHTS = {
    "displayName": 12.0,
    "skills": 10.0,
    "pastProjects": 8.0,
    "jobTitle": 6.0,
    "schools": 6.0,
    "interests": 6.0,
    "department": 5.0,
    "aboutMe": 2.0,
}
WHOLE, WORD, PREFIX = 1.5, 1.0, 0.5


def field_values(profile: Mapping[str, Any], field: str) -> list[list[str]]:
    raw = profile.get(field)
    values = [raw] if isinstance(raw, str) else list(raw or [])
    return [w for w in (words(v) for v in values if v) if w]


def _occurs(value: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(tuple(value[i : i + n]) == tuple(phrase) for i in range(len(value) - n + 1))


def _exact_score(
    fields: dict[str, list[list[str]]], scope: Iterable[str], phrase: Sequence[str]
) -> float:
    score = 0.0
    for field in scope:
        values = fields[field]
        if any(tuple(v) == tuple(phrase) for v in values):
            score += WEIGHTS[field] * WHOLE
        elif any(_occurs(v, phrase) for v in values):
            score += WEIGHTS[field] * WORD
    return score


def term_score(term: Term, fields: dict[str, list[list[str]]]) -> float:
    scope = [term.field] if term.field else list(WEIGHTS)
    if term.kind != "prefix":
        return _exact_score(fields, scope, term.words)
    # Per field: the prefix as a word of its own counts as that word; else a
    # longer word starting with it counts half the field's weight.
    prefix = term.words[0]
    total = 0.0
    for field in scope:
        exact = _exact_score(fields, [field], [prefix])
        if exact:
            total += exact
        elif any(w.startswith(prefix) for v in fields[field] for w in v):
            total += WEIGHTS[field] * PREFIX
    return total


_ANALYSED: dict[tuple[str, str], dict[str, list[list[str]]]] = {}


def analysed(profile: Mapping[str, Any]) -> dict[str, list[list[str]]]:
    key = (profile["id"], profile.get("version") or repr(sorted(profile.items())))
    if key not in _ANALYSED:
        _ANALYSED[key] = {f: field_values(profile, f) for f in WEIGHTS}
    return _ANALYSED[key]


def _same(a: Term, b: Term) -> bool:
    return (a.kind, a.words, a.field, a.negated) == (b.kind, b.words, b.field, b.negated)


def distinct_groups(query: Query) -> list[Group]:
    """The documented rule: a term repeated in a group counts once, and so does a
    group repeated (same terms, in any order)."""
    groups: list[Group] = []
    for group in query.groups:
        terms: list[Term] = []
        for term in group.terms:
            if not any(_same(term, kept) for kept in terms):
                terms.append(term)
        repeat = any(
            len(terms) == len(kept.terms)
            and all(any(_same(t, k) for k in kept.terms) for t in terms)
            for kept in groups
        )
        if not repeat:
            groups.append(Group(tuple(terms), group.position))
    return groups


def score(query: Query, profile: Mapping[str, Any]) -> float | None:
    """The profile's score, or None when it does not match."""
    fields = analysed(profile)
    total = 0.0
    matched = False
    for group in distinct_groups(query):
        if any(term_score(t, fields) > 0 for t in group.excluded):
            continue
        scores = [term_score(t, fields) for t in group.required]
        if all(s > 0 for s in scores):
            matched = True
            total += sum(scores)
    return total if matched else None


def matched_fields(query: Query, profile: Mapping[str, Any]) -> list[str]:
    fields = analysed(profile)
    found: set[str] = set()
    for group in distinct_groups(query):
        if any(term_score(t, fields) > 0 for t in group.excluded):
            continue
        per_term = []
        for term in group.required:
            scope = [term.field] if term.field else list(WEIGHTS)
            per_term.append({f for f in scope if term_score(_scoped(term, f), fields) > 0})
        if all(per_term):
            found.update(*per_term)
    return [f for f in WEIGHTS if f in found]


def _scoped(term: Term, field: str) -> Term:
    return Term(term.kind, term.words, field, term.negated, term.position)


def scan(profiles: Iterable[Mapping[str, Any]], query_text: str) -> dict[str, float]:
    """Id -> score of every matching profile."""
    query = parse(query_text)
    found: dict[str, float] = {}
    for profile in profiles:
        value = score(query, profile)
        if value is not None:
            found[profile["id"]] = value
    return found
