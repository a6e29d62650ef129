"""The query language: parsing a query string into groups of terms.

    >>> parse('skills:kubernetes "machine learning" OR kube*')
    Query(groups=(Group(...), Group(...)))

Grammar (docs/search.md has the user's version):

    query  = group { "OR" group }
    group  = term { ["AND"] term }
    term   = ["-" | "NOT "] [field ":"] ( word | '"' phrase '"' | prefix "*" )

Terms in a group must all match; `OR` joins groups. A bad query raises
QuerySyntaxError (an InvalidArgument) whose message names the problem and
the 0-based character position in the query where it is.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Final, Literal

from services.common.errors import InvalidArgument
from services.search.analysis import words
from services.search.fields import FIELD_ALIASES, SEARCH_FIELDS, resolve_field

__all__ = [
    "MAX_TERMS",
    "MIN_PREFIX_LENGTH",
    "Group",
    "Query",
    "QuerySyntaxError",
    "Term",
    "TermKind",
    "parse",
]

MAX_TERMS: Final = 32
MIN_PREFIX_LENGTH: Final = 2

TermKind = Literal["word", "phrase", "prefix"]

# A field name is letters only, so "10:30" or "http://x" stay ordinary words.
_FIELD: Final = re.compile(r"([A-Za-z]+):")
# A bare word ends at white space, a quote or a parenthesis.
_WORD_END: Final = re.compile(r'[\s"()]')
_OPERATORS: Final = frozenset({"OR", "AND", "NOT"})
_PARENTHESES_HINT: Final = (
    "parentheses cannot group terms: 'OR' separates whole groups, e.g. 'a c OR b c'"
)


class QuerySyntaxError(InvalidArgument):
    """A query that cannot be parsed; `position` is a 0-based character index."""

    def __init__(self, problem: str, position: int, hint: str = "") -> None:
        message = f"query: {problem} at position {position}"
        super().__init__(f"{message}; {hint}" if hint else message)
        self.problem = problem
        self.position = position


@dataclass(frozen=True)
class Term:
    """One thing to look for.

    `words` are analysed (folded) words: one for a word or a prefix, two or
    more for a phrase. `field` is None for "any searchable field".
    """

    kind: TermKind
    words: tuple[str, ...]
    field: str | None
    negated: bool
    position: int


@dataclass(frozen=True)
class Group:
    """Terms that must all match (`negated` ones must not)."""

    terms: tuple[Term, ...]
    position: int

    @property
    def required(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.negated)

    @property
    def excluded(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.negated)


@dataclass(frozen=True)
class Query:
    """Groups joined by OR: a profile matches if it matches any group."""

    groups: tuple[Group, ...]

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(t for g in self.groups for t in g.terms)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.groups: list[Group] = []
        self.current: list[Term] = []
        self.group_start = 0
        self.count = 0
        # Position of an operator still waiting for the term it needs after it.
        self.pending_or: int | None = None
        self.pending_and: int | None = None
        self.pending_not: int | None = None

    def parse(self) -> Query:
        text = self.text
        if not text.strip():
            raise InvalidArgument("query: is required")
        while self.i < len(text):
            char = text[self.i]
            if char.isspace():
                self.i += 1
            elif char in "()":
                raise QuerySyntaxError(f"'{char}' is not supported", self.i, _PARENTHESES_HINT)
            else:
                self._term_or_operator()
        self._finish()
        return Query(tuple(self.groups))

    # -- operators ---------------------------------------------------------

    def _operator(self, name: str, position: int) -> None:
        if self.pending_not is not None:
            raise QuerySyntaxError(
                f"'NOT' must be followed by a term to exclude, not '{name}'", self.pending_not
            )
        if name == "NOT":
            self.pending_not = position
            return
        if self.pending_and is not None:
            raise QuerySyntaxError("'AND' needs a term after it", self.pending_and)
        if name == "AND":
            if not self.current:
                raise QuerySyntaxError("'AND' needs a term before it", position)
            self.pending_and = position
            return
        # OR closes the current group.
        if not self.current:
            if self.pending_or is not None:
                raise QuerySyntaxError("'OR' needs a term after it", self.pending_or)
            raise QuerySyntaxError("'OR' needs a term before it", position)
        self._close_group()
        self.pending_or = position

    def _close_group(self) -> None:
        if not any(not t.negated for t in self.current):
            raise QuerySyntaxError(
                "this group only excludes terms", self.group_start, "add a term to search for"
            )
        self.groups.append(Group(tuple(self.current), self.group_start))
        self.current = []

    def _finish(self) -> None:
        if self.pending_not is not None:
            raise QuerySyntaxError("'NOT' needs a term after it", self.pending_not)
        if self.pending_and is not None:
            raise QuerySyntaxError("'AND' needs a term after it", self.pending_and)
        if self.current:
            self._close_group()
        elif self.pending_or is not None:
            raise QuerySyntaxError("'OR' needs a term after it", self.pending_or)
        if not self.groups:
            raise QuerySyntaxError("nothing to search for: the query has no letters or digits", 0)

    # -- terms -------------------------------------------------------------

    def _term_or_operator(self) -> None:
        text = self.text
        start = self.i
        negated = False
        if text[start] == "-":
            if start + 1 >= len(text) or text[start + 1].isspace():
                raise QuerySyntaxError("'-' must be directly followed by a term to exclude", start)
            negated = True
            self.i += 1
        field: str | None = None
        match = _FIELD.match(text, self.i)
        if match:
            name = match.group(1)
            field = resolve_field(name)
            if field is None:
                raise QuerySyntaxError(f"unknown field '{name}'", self.i, _field_hint(name))
            self.i = match.end()
            if self.i >= len(text) or text[self.i].isspace():
                raise QuerySyntaxError(f"'{name}:' needs a value right after the colon", start)
        if text[self.i] in "()":
            raise QuerySyntaxError(f"'{text[self.i]}' is not supported", self.i, _PARENTHESES_HINT)
        if text[self.i] == '"':
            self._phrase(start, field, negated)
        else:
            self._word(start, field, negated)

    def _phrase(self, start: int, field: str | None, negated: bool) -> None:
        text = self.text
        quote = self.i
        end = text.find('"', quote + 1)
        if end < 0:
            raise QuerySyntaxError("unclosed quote", quote)
        found = words(text[quote + 1 : end])
        if not found:
            raise QuerySyntaxError("empty phrase: no letters or digits between the quotes", quote)
        self.i = end + 1
        if self.i < len(text) and text[self.i] == "*":
            raise QuerySyntaxError(
                "'*' cannot follow a phrase", self.i, "'*' ends a single word, e.g. kube*"
            )
        kind: TermKind = "word" if len(found) == 1 else "phrase"
        self._add(Term(kind, tuple(found), field, negated or self._take_not(), start))

    def _word(self, start: int, field: str | None, negated: bool) -> None:
        text = self.text
        begin = self.i
        end_match = _WORD_END.search(text, begin)
        end = end_match.start() if end_match else len(text)
        raw = text[begin:end]
        self.i = end
        if field is None and not negated and raw in _OPERATORS:
            self._operator(raw, begin)
            return
        star = raw.find("*")
        if star >= 0:
            if star != len(raw) - 1:
                raise QuerySyntaxError(
                    "'*' is allowed only at the end of a word", begin + star, "e.g. kube*"
                )
            found = words(raw[:-1])
            if len(found) > 1:
                raise QuerySyntaxError(
                    f"'*' can end only a single word, and '{raw}' is several", begin
                )
            if not found or len(found[0]) < MIN_PREFIX_LENGTH:
                raise QuerySyntaxError(
                    f"prefix '{raw}' is too short",
                    begin,
                    f"put at least {MIN_PREFIX_LENGTH} letters or digits before '*'",
                )
            self._add(Term("prefix", (found[0],), field, negated or self._take_not(), start))
            return
        found = words(raw)
        if not found:
            if field is not None or negated or self.pending_not is not None:
                raise QuerySyntaxError(f"'{text[start:end]}' has no letters or digits", start)
            return  # stray punctuation between words, e.g. "Research & Development"
        # "node.js" or "CI/CD" are several words typed as one: a phrase.
        kind: TermKind = "word" if len(found) == 1 else "phrase"
        self._add(Term(kind, tuple(found), field, negated or self._take_not(), start))

    def _take_not(self) -> bool:
        if self.pending_not is None:
            return False
        self.pending_not = None
        return True

    def _add(self, term: Term) -> None:
        self.count += 1
        if self.count > MAX_TERMS:
            raise QuerySyntaxError(
                "too many terms", term.position, f"at most {MAX_TERMS} are allowed"
            )
        if not self.current:
            self.group_start = term.position
        self.current.append(term)
        self.pending_or = None
        self.pending_and = None


def _field_hint(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), FIELD_ALIASES, n=1, cutoff=0.7)
    known = f"fields are {', '.join(SEARCH_FIELDS)}"
    return f"did you mean '{FIELD_ALIASES[close[0]]}'? {known}" if close else known


def parse(text: str) -> Query:
    """Parses a query; raises QuerySyntaxError (InvalidArgument) naming the problem."""
    return _Parser(text).parse()
