"""``$search`` on users, as Graph runs it on directory objects.

    predicate = parse_search('"displayName:ad van" OR "mail:adele"')

Syntax: quoted ``"property:text"`` clauses joined by upper-case ``AND``/``OR``, with
parentheses; ``\\"`` and ``\\\\`` escape inside a clause. ``displayName`` is searched by
tokens: both sides are split into words at spaces, symbols, digit runs and lower-to-upper
case changes (words joined only by symbols are also kept together), and every word of the
search must start a word of the value, in any order. Any other filterable text property
matches by prefix, as Graph documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.query_filter import FILTERABLE
from devtools.graph_emulator.schema import (
    USER_PROPERTIES,
    UserRecord,
    canonical_property,
    property_value,
)

Predicate = Callable[[UserRecord], bool]

#: Properties searched by tokens rather than by prefix.
TOKENIZED: Final = frozenset({"displayName"})
MAX_SEARCH_LENGTH: Final = 4096
MAX_NESTING: Final = 32

_WORD_RUN: Final = re.compile(r"[^\W\d_]+|\d+")
_CASE_SPLIT: Final = re.compile(r"(?<=[a-z])(?=[A-Z])")


def tokenize(text: str) -> set[str]:
    """Graph's directory search words of ``text``, lower-cased."""
    words: set[str] = set()
    for chunk in text.split():
        runs = _WORD_RUN.findall(chunk)
        for run in runs:
            words.update(part.lower() for part in _CASE_SPLIT.split(run) if part)
        if len(runs) > 1:
            # Words separated only by symbols also match as one ("hello.world" ~ "helloworld").
            words.add("".join(runs).lower())
    return words


def _error(message: str) -> GraphError:
    return bad_request(f"Invalid $search clause: {message}", code="Request_UnsupportedQuery")


def _clause(text: str) -> Predicate:
    name, colon, needle = text.partition(":")
    if not colon:
        raise _error(
            f'\'{text}\' names no property; write "property:text", for example "displayName:adele".'
        )
    prop = canonical_property(name.strip())
    if prop is None:
        raise bad_request(
            f"Could not find a property named '{name.strip()}' on type 'microsoft.graph.user'."
        )
    if prop not in FILTERABLE or USER_PROPERTIES[prop] != "string" or prop == "id":
        raise _error(f"the property '{prop}' cannot be searched.")
    if prop in TOKENIZED:
        wanted = tokenize(needle)
        if not wanted:
            return lambda user: True

        def by_tokens(user: UserRecord) -> bool:
            value = property_value(user, prop)
            have = tokenize(value) if isinstance(value, str) else set()
            return all(any(word.startswith(w) for word in have) for w in wanted)

        return by_tokens
    prefix = needle.strip().casefold()

    def by_prefix(user: UserRecord) -> bool:
        value = property_value(user, prop)
        return isinstance(value, str) and value.casefold().startswith(prefix)

    return by_prefix


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.depth = 0

    def skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position].isspace():
            self.position += 1

    def at(self, word: str) -> bool:
        self.skip_space()
        end = self.position + len(word)
        if self.text[self.position : end] != word:
            return False
        return end == len(self.text) or not self.text[end].isalnum()

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        self.skip_space()
        if self.position != len(self.text):
            raise _error(f"unexpected text at position {self.position}: '{self.text}'.")
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at("OR"):
            self.position += 2
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda u: any(p(u) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.primary()]
        while self.at("AND"):
            self.position += 3
            parts.append(self.primary())
        return parts[0] if len(parts) == 1 else (lambda u: all(p(u) for p in parts))

    def primary(self) -> Predicate:
        self.skip_space()
        if self.position >= len(self.text):
            raise _error(f"a clause is missing at the end of '{self.text}'.")
        char = self.text[self.position]
        if char == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise _error(f"clauses are nested more than {MAX_NESTING} levels deep.")
            self.position += 1
            inner = self.or_expr()
            self.skip_space()
            if self.position >= len(self.text) or self.text[self.position] != ")":
                raise _error(f"a ')' is missing in '{self.text}'.")
            self.position += 1
            self.depth -= 1
            return inner
        if char != '"':
            raise _error(
                f"clauses must be in double quotes (position {self.position} in '{self.text}')."
            )
        return _clause(self.quoted())

    def quoted(self) -> str:
        self.position += 1
        out: list[str] = []
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "\\" and self.position + 1 < len(self.text):
                out.append(self.text[self.position + 1])
                self.position += 2
                continue
            if char == '"':
                self.position += 1
                return "".join(out)
            out.append(char)
            self.position += 1
        raise _error(f"a closing double quote is missing in '{self.text}'.")


def parse_search(text: str) -> Predicate:
    """A predicate over users; raises GraphError (400) naming what is wrong."""
    if not text.strip():
        raise _error("the $search value is empty.")
    if len(text) > MAX_SEARCH_LENGTH:
        raise _error(f"the $search value is longer than {MAX_SEARCH_LENGTH} characters.")
    return _Parser(text).parse()


def search_needs_header() -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        "Request with $search query parameter only works through MSGraph with a special "
        "request header: 'ConsistencyLevel: eventual'",
    )
