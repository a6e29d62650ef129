"""One Graph operation, independent of how it arrived (an HTTP request or a $batch item).

Handlers take a ``GraphCall`` and return a ``GraphResult`` so the same code answers both;
batch items can therefore fail, be throttled or be retried one by one.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

from devtools.graph_emulator.errors import GraphError, bad_request, graph_error_body
from devtools.graph_emulator.throttle import Backlog
from devtools.graph_emulator.tokens import Principal

GRAPH_JSON: Final = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)

#: Marks a call whose body is raw bytes rather than already-parsed JSON.
NO_BODY: Final = object()

#: OData system query options Graph knows; the ``$`` prefix is optional in v1.0.
SYSTEM_QUERY_OPTIONS: Final = frozenset(
    {
        "$select",
        "$top",
        "$skiptoken",
        "$filter",
        "$orderby",
        "$search",
        "$expand",
        "$count",
        "$skip",
        "$format",
        "$deltatoken",
    }
)


@functools.lru_cache(maxsize=1024)
def _parse_query_cached(raw_query: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(raw_query, keep_blank_values=True))


def _parse_query(raw_query: str) -> list[tuple[str, str]]:
    # Clients repeat the same few query strings (a $select per user id differs only in the
    # path), so parsing is cached by the whole string.
    return list(_parse_query_cached(raw_query))


def load_json(raw: bytes) -> Any:
    """Parse JSON and refuse what cannot be sent back out as UTF-8 (lone surrogates)."""
    try:
        value = json.loads(raw)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise ValueError("not valid JSON") from exc
    return value


@dataclass
class GraphCall:
    method: str
    #: Path below ``/v1.0``, starting with ``/`` (e.g. ``/users/{id}``).
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    principal: Principal
    #: ``https://host:port`` the client used; absolute links are built from it.
    base_url: str
    request_id: str
    client_request_id: str
    in_batch: bool = False
    #: A batch item's JSON body arrives already parsed.
    parsed_body: Any = field(default=NO_BODY)
    #: Shared by the items of one batch: what the throttle refused so far.
    backlog: Backlog = field(default_factory=Backlog)

    def _pairs(self) -> list[tuple[str, str]]:
        return _parse_query(self.raw_query)

    def option_names(self) -> dict[str, str]:
        """Query options as sent, ``$`` added where omitted; never raises (for costing)."""
        options: dict[str, str] = {}
        for key, value in self._pairs():
            name = key.lower()
            name = name if name.startswith("$") else f"${name}"
            options.setdefault(name, value)
        return options

    @property
    def advanced_query(self) -> bool:
        """``ConsistencyLevel: eventual`` was sent (Graph's advanced query header)."""
        return self.headers.get("consistencylevel", "").strip().lower() == "eventual"

    def query(self) -> dict[str, str]:
        """Query options, ``$`` optional as in Graph v1.0; a repeated option is an error."""
        options: dict[str, str] = {}
        for key, value in self._pairs():
            name = key.lower()
            if not name.startswith("$"):
                if f"${name}" not in SYSTEM_QUERY_OPTIONS:
                    continue  # Graph ignores query parameters it does not define.
                name = f"${name}"
            if name in options:
                option = name[1:].capitalize()
                raise bad_request(
                    f"Query option '{option}' was specified more than once, "
                    "but it must be specified at most once.",
                    code="BadRequest",
                )
            options[name] = value
        return options

    def json_body(self) -> Any:
        if self.parsed_body is not NO_BODY:
            return self.parsed_body
        if not self.body.strip():
            raise bad_request("Empty Payload. JSON content expected.", code="BadRequest")
        try:
            return load_json(self.body)
        except ValueError as exc:
            raise bad_request(
                "Unable to read JSON request payload. Please ensure Content-Type header is "
                "set and payload is of valid JSON format.",
                code="BadRequest",
            ) from exc


@dataclass
class GraphResult:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds the answer waits before it is sent (a slow SharePoint read); the work itself
    #: is already done, so the emulator's event loop is never held.
    delay: float = 0.0
    #: Graph operations this answer carries (the items of a batch).
    operations: int = 1

    @classmethod
    def json(cls, body: Any, status: int = 200) -> GraphResult:
        return cls(status=status, body=body, headers={"Content-Type": GRAPH_JSON})

    @classmethod
    def no_content(cls) -> GraphResult:
        return cls(status=204)

    @classmethod
    def from_error(cls, err: GraphError, call: GraphCall) -> GraphResult:
        headers = {"Content-Type": GRAPH_JSON, **err.headers}
        body = graph_error_body(err.code, err.message, call.request_id, call.client_request_id)
        return cls(status=err.status, body=body, headers=headers)
