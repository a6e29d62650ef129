"""Compiling a parsed query into the plan the evaluator runs.

    plan = compile_query(parse('skills:kube* "machine learning" OR kube*'))
    plan.groups[0].required[0].lookups        # (field, entry) pairs to read

Repeats are merged first: a term written twice in a group counts once, and a
group written twice counts once, so `"a b c" "a b c" ...` costs what `"a b c"`
costs (docs/search.md states the rule). Terms and groups are put in a fixed
order, so equivalent queries compile to the same plan and the same digest, and
a page token fits every spelling of its query.

A term is one of

    T  a word (entry `w:<word>`) or a two-word phrase (`b:<a> <b>`)
    P  prefix*, expanded through the word list when the query runs
    V  a phrase of three or more words: its word pairs, then a check of the text

searched in one field or in every searchable field (`where` is `*`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal

from services.search.fields import SEARCH_FIELDS
from services.search.query import Group, Query, Term

__all__ = ["Plan", "PlanGroup", "PlanTerm", "compile_query", "merge_repeats"]

PlanKind = Literal["T", "P", "V"]

# Cheap terms first, so a group that already matches nothing skips the rest.
_KIND_ORDER: Final = {"T": 0, "P": 1, "V": 2}
# Fields where a value of three or more words is filed whole (`v:<words>`).
_NO_WHOLE_VALUES: Final = frozenset({"aboutMe"})


@dataclass(frozen=True)
class PlanTerm:
    """One distinct thing to look for; `term` is its first spelling in the query."""

    kind: PlanKind
    where: str  # a field name, or "*" for every searchable field
    text: str  # T: the entry; P: the prefix; V: the phrase's words, space separated
    pairs: tuple[str, ...]  # V: the entries of its adjacent word pairs
    term: Term

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.where, self.text)

    @property
    def fields(self) -> tuple[str, ...]:
        return SEARCH_FIELDS if self.where == "*" else (self.where,)

    def whole_value_entry(self, field: str) -> str | None:
        """V: the entry of the phrase as a whole value of `field`, where one is filed."""
        return None if field in _NO_WHOLE_VALUES else f"v:{self.text}"


@dataclass(frozen=True)
class PlanGroup:
    required: tuple[PlanTerm, ...]
    excluded: tuple[PlanTerm, ...]


@dataclass(frozen=True)
class Plan:
    groups: tuple[PlanGroup, ...]
    digest: str
    query: Query  # with repeats merged: what matched fields are worked out from

    @property
    def terms(self) -> tuple[PlanTerm, ...]:
        """Each distinct term once, in plan order."""
        seen: dict[tuple[str, str, str], PlanTerm] = {}
        for group in self.groups:
            for term in (*group.required, *group.excluded):
                seen.setdefault(term.key, term)
        return tuple(seen.values())


def _term_key(term: Term) -> tuple[str, tuple[str, ...], str | None, bool]:
    return (term.kind, term.words, term.field, term.negated)


def merge_repeats(query: Query) -> Query:
    """The query with each group's repeated terms, and repeated groups, kept once."""
    groups: list[Group] = []
    seen_groups: set[frozenset[tuple[str, tuple[str, ...], str | None, bool]]] = set()
    for group in query.groups:
        terms: dict[tuple[str, tuple[str, ...], str | None, bool], Term] = {}
        for term in group.terms:
            terms.setdefault(_term_key(term), term)
        identity = frozenset(terms)
        if identity not in seen_groups:
            seen_groups.add(identity)
            groups.append(Group(tuple(terms.values()), group.position))
    return Query(tuple(groups))


def _plan_term(term: Term) -> PlanTerm:
    where = term.field or "*"
    if term.kind == "prefix":
        return PlanTerm("P", where, term.words[0], (), term)
    if len(term.words) == 1:
        return PlanTerm("T", where, f"w:{term.words[0]}", (), term)
    pairs = tuple(f"b:{a} {b}" for a, b in zip(term.words, term.words[1:], strict=False))
    if len(pairs) == 1:
        return PlanTerm("T", where, pairs[0], (), term)
    return PlanTerm("V", where, " ".join(term.words), pairs, term)


def _ordered(terms: tuple[Term, ...]) -> tuple[PlanTerm, ...]:
    planned = [_plan_term(t) for t in terms]
    return tuple(sorted(planned, key=lambda t: (_KIND_ORDER[t.kind], t.where, t.text)))


def compile_query(query: Query) -> Plan:
    """The plan of `query`, repeats merged (see the module docstring)."""
    merged = merge_repeats(query)
    groups = [PlanGroup(_ordered(g.required), _ordered(g.excluded)) for g in merged.groups]

    def shape(group: PlanGroup) -> tuple[list[tuple[str, str, str]], ...]:
        return ([t.key for t in group.required], [t.key for t in group.excluded])

    groups.sort(key=shape)
    text = "\x1e".join(
        "\x1d".join("\x1f".join(key) for key in keys) for g in groups for keys in shape(g)
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    return Plan(tuple(groups), digest, merged)
