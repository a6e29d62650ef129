"""Routing of Graph calls, plus what every call goes through: injected failures, the
throttling budget, the handler, and the counters.

    result = execute(state, call)   # a top-level request: a $batch or one operation

A batch item goes through ``execute_metered`` exactly like a top-level request, so it can be
throttled or failed on its own while the batch answers 200.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from devtools.graph_emulator import groups_api, users_api
from devtools.graph_emulator.batch_api import run_batch
from devtools.graph_emulator.call import GraphCall, GraphResult
from devtools.graph_emulator.costs import cost_of
from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.throttle import Verdict, format_retry_after

Handler = Callable[[EmulatorState, GraphCall, dict[str, str]], GraphResult]

#: Above this share of its quota an app is told how close it is (Graph's documented 0.8).
LIMIT_WARNING_SHARE: Final = 0.8


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
        "GET", r"/users/\$count", "GET /users/$count", lambda s, c, p: users_api.count_users(s, c)
    ),
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
    _route(
        "GET",
        r"/groups/(?P<group>[^/]+)/(?P<relation>members|transitiveMembers)/microsoft\.graph\.user",
        "GET /groups/{id}/members",
        lambda s, c, p: groups_api.list_member_users(s, c, p["group"], p["relation"]),
    ),
    _route("GET", r"/me", "GET /me", lambda s, c, p: users_api.get_me(s, c)),
    _route("PATCH", r"/me", "PATCH /me", lambda s, c, p: users_api.patch_me(s, c)),
)


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


def _is_batch(call: GraphCall) -> bool:
    return call.path.rstrip("/").lower() == "/$batch"


def execute(state: EmulatorState, call: GraphCall) -> GraphResult:
    """Answer one top-level Graph request (a batch or a single operation)."""
    if _is_batch(call):
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
    """One operation: possibly failed or throttled, else charged and handled."""
    if call.in_batch:
        state.stats.batch_items += 1
    result = _execute_metered(state, call)
    state.stats.by_status[result.status] += 1
    return result


def _throttled(state: EmulatorState, call: GraphCall, verdict: Verdict) -> GraphError:
    scope = f"Tenant_Application/{verdict.refused_by}/{call.principal.app_id}/{state.tenant_id}"
    reason = "WriteLimitExceeded" if verdict.refused_by == "Write" else "ResourceUnitLimitExceeded"
    return GraphError(
        429,
        "TooManyRequests",
        "Too many requests: the application has used its "
        + ("write quota" if verdict.refused_by == "Write" else "resource-unit quota")
        + " for this tenant. Retry after the time given in Retry-After.",
        headers={
            "Retry-After": format_retry_after(verdict.retry_after),
            "x-ms-throttle-scope": scope,
            "x-ms-throttle-information": reason,
        },
    )


def _execute_metered(state: EmulatorState, call: GraphCall) -> GraphResult:
    if call.in_batch and _is_batch(call):
        return GraphResult.from_error(
            bad_request("A batch request cannot contain another batch.", code="BadRequest"), call
        )
    try:
        route, params = match(call)
    except GraphError as err:
        return GraphResult.from_error(err, call)
    state.stats.by_route[route.name] += 1
    config = state.config

    failure = state.faults.failure(config)
    if failure is not None:
        state.stats.injected_failures += 1
        return GraphResult.from_error(failure.error(), call)

    cost = cost_of(call.method, route.name, call.option_names())
    verdict = state.throttle.admit(
        f"{call.principal.app_id}:{state.tenant_id}",
        cost.units,
        cost.writes,
        config.quota_per_10s,
        config.write_quota_per_150s,
        call.backlog,
    )
    if not verdict.allowed:
        # Charged all the same (the throttle recorded it): retrying early keeps an app throttled.
        state.stats.throttled += 1
        state.stats.throttled_resource_units += cost.units
        result = GraphResult.from_error(_throttled(state, call, verdict), call)
        result.headers["x-ms-resource-unit"] = str(cost.units)
        return result
    state.stats.resource_units += cost.units
    state.stats.writes += cost.writes
    state.stats.note_window(verdict.units_in_window, verdict.writes_in_window)

    try:
        result = route.handler(state, call, params)
    except GraphError as err:
        result = GraphResult.from_error(err, call)
    result.headers["x-ms-resource-unit"] = str(cost.units)
    if verdict.usage > LIMIT_WARNING_SHARE:
        result.headers["x-ms-throttle-limit-percentage"] = f"{min(verdict.usage, 1.8):.2f}"
    return result
