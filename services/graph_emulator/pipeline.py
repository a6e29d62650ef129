"""Routing of Graph calls, plus what every call goes through: injected failures, the
throttling budget, the handler, and the counters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from . import users_api
from .batch_api import run_batch
from .call import GraphCall, GraphResult
from .errors import GraphError, bad_request
from .state import EmulatorState
from .throttle import format_retry_after

Handler = Callable[[EmulatorState, GraphCall, dict[str, str]], GraphResult]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler


def _route(method: str, path: str, name: str, handler: Handler) -> Route:
    return Route(method, re.compile(path, re.IGNORECASE), name, handler)


ROUTES: Final = (
    _route("GET", r"/users", "GET /users", lambda s, c, p: users_api.list_users(s, c)),
    _route(
        "GET",
        r"/users/(?P<key>[^/]+)",
        "GET /users/{id}",
        lambda s, c, p: users_api.get_user(s, c, p["key"]),
    ),
    _route(
        "PATCH",
        r"/users/(?P<key>[^/]+)",
        "PATCH /users/{id}",
        lambda s, c, p: users_api.patch_user(s, c, p["key"]),
    ),
    _route("GET", r"/me", "GET /me", lambda s, c, p: users_api.get_me(s, c)),
    _route("PATCH", r"/me", "PATCH /me", lambda s, c, p: users_api.patch_me(s, c)),
)

_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def match(call: GraphCall) -> tuple[Route, dict[str, str]]:
    path = call.path.rstrip("/") or "/"
    known_path = False
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found is None:
            continue
        known_path = True
        if route.method == call.method:
            return route, found.groupdict()
    if known_path:
        raise GraphError(
            405,
            "Request_BadRequest",
            f"The HTTP method '{call.method}' is not allowed on '{path}'.",
        )
    segment = path.strip("/").split("/")[0] or "/"
    raise GraphError(404, "BadRequest", f"Resource not found for the segment '{segment}'.")


def execute(state: EmulatorState, call: GraphCall) -> GraphResult:
    """Answer one top-level Graph request (a batch or a single operation)."""
    if call.path.rstrip("/").lower() == "/$batch":
        if call.in_batch:
            return GraphResult.from_error(
                bad_request("A batch request cannot contain another batch.", code="BadRequest"),
                call,
            )
        if call.method != "POST":
            return GraphResult.from_error(
                GraphError(
                    405,
                    "Request_BadRequest",
                    f"The HTTP method '{call.method}' is not allowed on '/$batch'.",
                ),
                call,
            )
        state.stats.by_route["POST /$batch"] += 1
        try:
            return run_batch(state, call, lambda item: execute_metered(state, item))
        except GraphError as err:
            return GraphResult.from_error(err, call)
    return execute_metered(state, call)


def execute_metered(state: EmulatorState, call: GraphCall) -> GraphResult:
    """One operation: charged, possibly failed or throttled, then handled."""
    if call.in_batch:
        state.stats.batch_items += 1
    result = _execute_metered(state, call)
    state.stats.by_status[result.status] += 1
    return result


def _execute_metered(state: EmulatorState, call: GraphCall) -> GraphResult:
    if call.in_batch and call.path.rstrip("/").lower() == "/$batch":
        return GraphResult.from_error(
            bad_request("A batch request cannot contain another batch.", code="BadRequest"), call
        )
    try:
        route, params = match(call)
    except GraphError as err:
        return GraphResult.from_error(err, call)
    state.stats.by_route[route.name] += 1
    config = state.config

    if config.failure_rate > 0 and state.failure_rng.random() < config.failure_rate:
        state.stats.injected_failures += 1
        retry = format_retry_after(state.failure_rng.uniform(0.5, 3.0))
        return GraphResult.from_error(
            GraphError(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please try again later.",
                headers={"Retry-After": retry},
            ),
            call,
        )

    writes = 1 if call.method in _WRITE_METHODS else 0
    throttle_key = f"{call.principal.app_id}:{state.tenant_id}"
    wait = state.throttle.admit(
        throttle_key, 1, writes, config.quota_per_10s, config.write_quota_per_150s
    )
    if wait is not None:
        state.stats.throttled += 1
        return GraphResult.from_error(
            GraphError(
                429,
                "TooManyRequests",
                "Too many requests. The application has exceeded its resource-unit "
                "budget; retry after the time given in Retry-After.",
                headers={
                    "Retry-After": format_retry_after(wait),
                    "x-ms-throttle-scope": "Tenant_Application/ReadWrite/"
                    f"{call.principal.app_id}/{state.tenant_id}",
                },
            ),
            call,
        )
    state.stats.resource_units += 1
    state.stats.writes += writes

    try:
        result = route.handler(state, call, params)
    except GraphError as err:
        result = GraphResult.from_error(err, call)
    result.headers.setdefault("x-ms-resource-unit", "1")
    return result
