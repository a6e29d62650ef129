"""Compiling a parsed query into the plan the search script runs.

The plan is a flat list of strings (Lua reads it in order):

    groups
    per group:  required excluded   then its terms
    per term:   'T' where entry                  a word (w:...) or two-word phrase (b:...)
                'P' where prefix                 prefix*
                'V' where phrase n pair-entry*n  a phrase of three or more words

`where` is a field name or `*` (every searchable field). Equivalent queries
compile to the same plan (terms and groups in a fixed order, since scores
are sums), so a page token fits every spelling of its query.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from services.search.query import Query, Term

__all__ = ["Plan", "compile_query"]

# Cheap terms first, so a group that already matches nothing skips the rest.
_KIND_ORDER = {"T": 0, "P": 1, "V": 2}


@dataclass(frozen=True)
class Plan:
    """The script arguments for a query, its digest and the term of each ordinal."""

    args: tuple[str, ...]
    digest: str
    terms: tuple[Term, ...]  # in plan order: the n-th term the script evaluates


def _term_args(term: Term) -> tuple[str, ...]:
    where = term.field or "*"
    if term.kind == "prefix":
        return ("P", where, term.words[0])
    if len(term.words) == 1:
        return ("T", where, f"w:{term.words[0]}")
    pairs = [f"b:{a} {b}" for a, b in zip(term.words, term.words[1:], strict=False)]
    if len(pairs) == 1:
        return ("T", where, pairs[0])
    return ("V", where, " ".join(term.words), str(len(pairs)), *pairs)


def _ordered(terms: tuple[Term, ...]) -> list[tuple[tuple[str, ...], Term]]:
    compiled = [(_term_args(t), t) for t in terms]
    return sorted(compiled, key=lambda item: (_KIND_ORDER[item[0][0]], item[0]))


def compile_query(query: Query) -> Plan:
    groups = [(_ordered(g.required), _ordered(g.excluded)) for g in query.groups]
    groups.sort(key=lambda g: ([a for a, _ in g[0]], [a for a, _ in g[1]]))
    args: list[str] = [str(len(groups))]
    terms: list[Term] = []
    for required, excluded in groups:
        args += [str(len(required)), str(len(excluded))]
        for term_args, term in (*required, *excluded):
            args += term_args
            terms.append(term)
    digest = hashlib.sha256("\x1f".join(args).encode()).hexdigest()[:24]
    return Plan(tuple(args), digest, tuple(terms))
