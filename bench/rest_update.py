"""A profile update through REST, against the same PATCH made to Graph directly.

    python -m bench --only rest_update [--quick]

The whole stack (real Redis, the Graph emulator, the services, Envoy). Each
round updates one user's `aboutMe` twice, side by side, in alternating order:

- through REST: `PATCH /v1/profiles/{id}` on the gateway with the user's
  delegated token (Envoy, then the extender: a read for the version check,
  the on-behalf-of token, Graph's PATCH, a read of the result, the LOB-write
  mark and the search index);
- directly: `PATCH /v1.0/users/{id}` on the emulator with a Graph token of
  the same user, as a client without profile-sync would.

The difference is what profile-sync adds to the write Graph has to do anyway.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.graph_users import GRAPH_AUDIENCE, graph_users
from bench.results import Result
from devtools.devstack.lob_client import emulator_http, emulator_token
from devtools.devstack.stack import Stack, StackOptions

__all__ = ["run"]

USERS = 10  # updated in turn, so the on-behalf-of token cache holds one entry per user


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _timed(call: Callable[[], httpx.Response], expected: int, what: str) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != expected:
        raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text[:200]}")
    return elapsed


def _measure(stack: Stack, rounds: int) -> tuple[list[float], list[float]]:
    users = graph_users(stack.emulator_url, stack.ca_file, USERS)
    tokens: list[tuple[str, str]] = [
        (
            emulator_token(stack.emulator_url, stack.ca_file, user=user["userPrincipalName"]),
            emulator_token(
                stack.emulator_url,
                stack.ca_file,
                user=user["userPrincipalName"],
                audience=GRAPH_AUDIENCE,
            ),
        )
        for user in users
    ]
    rest_ms: list[float] = []
    direct_ms: list[float] = []
    with (
        httpx.Client(base_url=stack.gateway_url, timeout=60, trust_env=False) as rest,
        emulator_http(stack.emulator_url, stack.ca_file) as graph,
    ):

        def both(number: int) -> tuple[float, float]:
            user = users[number % len(users)]
            rest_token, graph_token = tokens[number % len(users)]
            body = {"aboutMe": f"Updated from the LOB app, round {number}"}

            def through_rest() -> httpx.Response:
                return rest.patch(
                    f"/v1/profiles/{user['id']}",
                    json=body,
                    headers={"Authorization": f"Bearer {rest_token}"},
                )

            def direct() -> httpx.Response:
                return graph.patch(
                    f"/v1.0/users/{user['id']}",
                    json=body,
                    headers={"Authorization": f"Bearer {graph_token}"},
                )

            # Alternating order, so neither side always runs on a warmer machine.
            if number % 2:
                direct_time = _timed(direct, 204, "Graph PATCH")
                rest_time = _timed(through_rest, 200, "REST PATCH")
            else:
                rest_time = _timed(through_rest, 200, "REST PATCH")
                direct_time = _timed(direct, 204, "Graph PATCH")
            return rest_time, direct_time

        # Warm-up, not measured: connections, MSAL's token cache, code paths.
        for number in range(len(users)):
            both(number)
        for number in range(rounds):
            rest_time, direct_time = both(number)
            rest_ms.append(rest_time)
            direct_ms.append(direct_time)
    return rest_ms, direct_ms


def run(quick: bool) -> list[Result]:
    rounds = 30 if quick else 500
    with tempfile.TemporaryDirectory(prefix="bench-update-") as state:
        options = StackOptions(state_dir=Path(state), users=100, log_level="WARNING")
        with Stack(options) as stack:
            rest_ms, direct_ms = _measure(stack, rounds)
    workload = f"{rounds} aboutMe updates over {USERS} users, REST and direct interleaved"
    results = []
    for label, share in (("p50", 0.5), ("p99", 0.99)):
        rest = statistics.median(rest_ms) if share == 0.5 else _percentile(rest_ms, share)
        direct = statistics.median(direct_ms) if share == 0.5 else _percentile(direct_ms, share)
        results += [
            Result(
                f"update through REST {label}",
                f"{workload}; baseline: the same PATCH direct to Graph",
                round(rest, 1),
                "ms",
                baseline=round(direct, 1),
            ),
            Result(
                f"update direct to Graph {label}",
                f"{workload}; the emulator's own PATCH (baseline of the REST rows)",
                round(direct, 1),
                "ms",
            ),
            Result(
                f"update: added by profile-sync {label}",
                f"{workload}; REST minus direct; baseline: the whole REST update",
                round(rest - direct, 1),
                "ms",
                baseline=round(rest, 1),
            ),
        ]
    return results
