"""``$filter`` on users: the OData subset Graph supports on directory objects.

    predicate = parse_filter("startswith(displayName,'Ad') and accountEnabled eq true",
                             advanced=False)
    matching = [u for u in users if predicate(u)]

Grammar: ``or``/``and``/``not``, parentheses, ``prop eq|ne|ge|le literal``, ``prop in (...)``,
``startswith(prop, 'x')`` and ``endswith(prop, 'x')``; literals are 'strings' (quote doubled
to escape), ``true``/``false`` and ``null``. Keywords and property names are case-insensitive;
string comparisons are too, as in the directory.

Which property supports which operator, and which need Graph's *advanced query* parameters
(``ConsistencyLevel: eventual`` and ``$count=true``), follows Graph's table for directory
objects: ``ne``/``not`` and ``endsWith`` are advanced everywhere, and some properties
(``companyName``, ``officeLocation``, ...) need advanced queries for anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.schema import UserRecord, canonical_property, property_value

Predicate = Callable[[UserRecord], bool]

#: Longest $filter and deepest nesting accepted; beyond them the request is refused rather
#: than risking the parser's recursion.
MAX_FILTER_LENGTH: Final = 4096
MAX_NESTING: Final = 32


@dataclass(frozen=True)
class Capability:
    default: frozenset[str]
    advanced: frozenset[str] = frozenset()


def _string(default: str = "eq in startswith ge le", advanced: str = "null") -> Capability:
    return Capability(frozenset(default.split()), frozenset(advanced.split()))


#: Operators by property (lower-case names: eq, in, startswith, endswith, ge, le, null for
#: ``eq null``). ``ne`` and ``not`` are advanced-only on every property listed here.
FILTERABLE: Final[dict[str, Capability]] = {
    "id": _string("eq in", ""),
    "accountEnabled": _string("eq in", ""),
    "userType": _string("eq in", "null"),
    "displayName": _string(),
    "givenName": _string(),
    "surname": _string(),
    "jobTitle": _string(),
    "department": _string(),
    "city": _string(),
    "country": _string(),
    "state": _string(),
    "employeeId": _string(),
    "mailNickname": _string(),
    "usageLocation": _string(advanced=""),
    "mail": _string(advanced="endswith"),
    "userPrincipalName": _string(advanced="endswith"),
    "companyName": _string("", "eq in startswith ge le null"),
    "officeLocation": _string("", "eq in startswith ge le null"),
    "mobilePhone": _string("", "eq in startswith ge le null"),
    "preferredLanguage": _string("", "eq in startswith ge le null"),
    "postalCode": _string("", "eq in startswith ge le null"),
    "streetAddress": _string("", "eq in startswith ge le null"),
    "employeeType": _string("", "eq in startswith ge le"),
}

_TOKEN: Final = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<open>\() | (?P<close>\)) | (?P<comma>,) | (?P<colon>:)
      | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b)
      | (?P<word>[A-Za-z_$][A-Za-z0-9_./$]*)
      | (?P<number>-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)
_COMPARISONS: Final = frozenset({"eq", "ne", "ge", "le", "gt", "lt"})
_FUNCTIONS: Final = frozenset({"startswith", "endswith", "contains"})


def _unsupported_clause(name: str) -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{name}' of "
        "resource 'User'.",
    )


def advanced_required(operator: str) -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Operator '{operator}' is not supported because the required parameters might be "
        "missing. Try adding $count=true query parameter and ConsistencyLevel:eventual "
        "header. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
    )


def _syntax(message: str) -> GraphError:
    return bad_request(f"Invalid filter clause: {message}", code="BadRequest")


@dataclass
class _Token:
    kind: str
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise _syntax(f"syntax error at position {position} in '{text}'.")
        kind = found.lastgroup or ""
        tokens.append(_Token(kind, found.group(kind), found.start(kind)))
        position = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str, advanced: bool) -> None:
        self.text = text
        self.advanced = advanced
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str | None = None, word: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise _syntax(f"unexpected end of '{self.text}'.")
        if (kind and token.kind != kind) or (word and token.text.lower() != word):
            expected = word or kind
            raise _syntax(f"expected {expected} at position {token.position} in '{self.text}'.")
        self.index += 1
        return token

    def _next_is(self, kind: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() in words

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        token = self.peek()
        if token is not None:
            raise _syntax(f"unexpected '{token.text}' at position {token.position}.")
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at_word("or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda user: any(part(user) for part in parts)

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.at_word("and"):
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda user: all(part(user) for part in parts)

    def unary(self) -> Predicate:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _syntax(f"the expression is nested more than {MAX_NESTING} levels deep.")
        try:
            if self.at_word("not"):
                self.take()
                self.require_advanced("not")
                inner = self.unary()
                return lambda user: not inner(user)
            token = self.peek()
            if token is not None and token.kind == "open":
                self.take()
                grouped = self.or_expr()
                self.take("close")
                return grouped
            if self.at_word(*_FUNCTIONS):
                return self.function()
            token = self.peek()
            if token is not None and token.kind == "word" and "/" in token.text:
                return self.plans_lambda()
            return self.comparison()
        finally:
            self.depth -= 1

    def require_advanced(self, operator: str) -> None:
        if not self.advanced:
            raise advanced_required(operator)

    def property(self) -> str:
        token = self.take("word")
        name = canonical_property(token.text)
        if name is None:
            raise bad_request(
                f"Could not find a property named '{token.text}' on type 'microsoft.graph.user'."
            )
        return name

    def allow(self, name: str, operator: str) -> None:
        capability = FILTERABLE.get(name)
        if capability is None:
            raise _unsupported_clause(name)
        if operator in capability.default:
            return
        if operator in capability.advanced:
            self.require_advanced("eq" if operator == "null" else operator)
            return
        raise _unsupported_clause(name)

    def literal(self) -> Any:
        token = self.peek()
        if token is None:
            raise _syntax(f"a value is missing at the end of '{self.text}'.")
        self.index += 1
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        if token.kind == "word" and token.text.lower() == "null":
            return None
        if token.kind == "number":
            raise _syntax(f"numbers are not valid for user properties (position {token.position}).")
        raise _syntax(f"expected a value at position {token.position} in '{self.text}'.")

    def function(self) -> Predicate:
        name = self.take("word").text.lower()
        self.take("open")
        prop = self.property()
        self.take("comma")
        value = self.literal()
        self.take("close")
        if name == "contains" or not isinstance(value, str):
            raise _unsupported_clause(prop)
        self.allow(prop, name)
        needle = value.casefold()
        if name == "startswith":
            return lambda user: _text(user, prop).startswith(needle)
        return lambda user: _text(user, prop).endswith(needle)

    def comparison(self) -> Predicate:
        prop = self.property()
        operator_token = self.take("word")
        operator = operator_token.text.lower()
        if operator == "in":
            return self.membership(prop)
        if operator not in _COMPARISONS:
            raise _syntax(
                f"unknown operator '{operator_token.text}' at position {operator_token.position}."
            )
        value = self.literal()
        if operator in ("gt", "lt"):
            raise _unsupported_clause(prop)
        if operator == "ne":
            self.require_advanced("ne")
            self.allow(prop, "null" if value is None else "eq")
            positive = _equals(prop, value)
            return lambda user: not positive(user)
        if operator == "eq":
            self.allow(prop, "null" if value is None else "eq")
            return _equals(prop, value)
        if not isinstance(value, str):
            raise _unsupported_clause(prop)
        self.allow(prop, operator)
        bound = value.casefold()
        if operator == "ge":
            return lambda user: _text(user, prop) >= bound
        return lambda user: _text(user, prop) <= bound

    def plans_lambda(self) -> Predicate:
        """``assignedPlans/any(p:p/service eq 'SharePoint' and p/capabilityStatus eq
        'Enabled')``: an advanced query, as Graph's advanced-query page lists it ("List users
        with a particular service plan that is in a suspended state",
        https://learn.microsoft.com/graph/aad-advanced-queries)."""
        head = self.take("word")
        collection, _, operator = head.text.partition("/")
        if canonical_property(collection) != "assignedPlans" or operator.lower() != "any":
            name = canonical_property(collection) or collection
            raise _unsupported_clause(name)
        self.require_advanced("any")
        self.take("open")
        variable = self.take("word").text
        self.take("colon")
        inner = self.plan_or(variable)
        self.take("close")
        return lambda user: any(
            isinstance(plan, dict) and inner(plan) for plan in property_value(user, "assignedPlans")
        )

    def plan_or(self, variable: str) -> Callable[[dict[str, Any]], bool]:
        parts = [self.plan_and(variable)]
        while self.at_word("or"):
            self.take()
            parts.append(self.plan_and(variable))
        return lambda plan: any(part(plan) for part in parts)

    def plan_and(self, variable: str) -> Callable[[dict[str, Any]], bool]:
        parts = [self.plan_clause(variable)]
        while self.at_word("and"):
            self.take()
            parts.append(self.plan_clause(variable))
        return lambda plan: all(part(plan) for part in parts)

    def plan_clause(self, variable: str) -> Callable[[dict[str, Any]], bool]:
        token = self.take("word")
        prefix, _, field = token.text.partition("/")
        fields = {"service": "service", "capabilitystatus": "capabilityStatus"}
        fields["serviceplanid"] = "servicePlanId"
        if prefix != variable or field.lower() not in fields:
            raise _unsupported_clause(f"assignedPlans/{field or token.text}")
        name = fields[field.lower()]
        self.take("word", "eq")
        value = self.peek()
        if value is not None and value.kind == "guid":
            self.index += 1
            wanted = value.text.lower()
        else:
            literal = self.literal()
            if not isinstance(literal, str):
                raise _unsupported_clause(f"assignedPlans/{name}")
            wanted = literal.casefold()
        return lambda plan: str(plan.get(name) or "").casefold() == wanted

    def membership(self, prop: str) -> Predicate:
        self.allow(prop, "in")
        self.take("open")
        values = [self.literal()]
        while self._next_is("comma"):
            self.take("comma")
            values.append(self.literal())
        self.take("close")
        tests = [_equals(prop, value) for value in values]
        return lambda user: any(test(user) for test in tests)


def _text(user: UserRecord, prop: str) -> str:
    value = property_value(user, prop)
    return value.casefold() if isinstance(value, str) else ""


def _equals(prop: str, value: Any) -> Predicate:
    if value is None:
        return lambda user: property_value(user, prop) in (None, "")
    if isinstance(value, bool):
        return lambda user: property_value(user, prop) is value
    wanted = str(value).casefold()
    return lambda user: _text(user, prop) == wanted


def parse_filter(text: str, *, advanced: bool) -> Predicate:
    """A predicate over users; raises GraphError (400) naming what is wrong."""
    if not text.strip():
        raise _syntax("the $filter value is empty.")
    if len(text) > MAX_FILTER_LENGTH:
        raise _syntax(f"the $filter value is longer than {MAX_FILTER_LENGTH} characters.")
    return _Parser(text, advanced).parse()
