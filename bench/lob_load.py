"""Many LOB clients at once while a sync runs.

50 concurrent clients read profiles, search and page through changes (and
some hold a change stream open) for a minute, while a full sync of 10,000
users runs. Reports latency per operation and every error; the goal is no
error at all.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx

from bench.results import Result
from services.devstack.lob_client import emulator_token
from services.devstack.stack import Stack, StackOptions

__all__ = ["run"]

QUERIES = (
    "skills:python",
    "kubernetes",
    "interests:chess OR interests:yoga",
    "data*",
    '"project management"',
)


# Marks the load's requests in the gateway's access log, apart from the idle baseline's.
LOAD_AGENT = "profilesync-bench-load"


def _operation(path: str) -> str | None:
    """The operation of a request path in the gateway's access log (streams are not timed)."""
    if path.startswith("/v1/profiles:search"):
        return "search"
    if path.startswith("/v1/changes:stream"):
        return None
    if path.startswith("/v1/changes"):
        return "list changes"
    if path.startswith("/v1/profiles/"):
        return "get profile"
    return None


def _gateway_latencies(access_log: str) -> dict[str, list[float]]:
    """What Envoy measured for the load's calls: request in to response out, without
    the time the load generator itself took to send and read them."""
    latencies: dict[str, list[float]] = {}
    for line in access_log.splitlines():
        if LOAD_AGENT not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        operation = _operation(str(entry.get("path", "")))
        if operation is not None and entry.get("userAgent") == LOAD_AGENT:
            latencies.setdefault(operation, []).append(float(entry["durationMs"]))
    return latencies


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _request(
    operation: str, http: httpx.AsyncClient, rng: random.Random, user_ids: list[str]
) -> Awaitable[httpx.Response]:
    if operation == "get profile":
        return http.get(f"/v1/profiles/{rng.choice(user_ids)}")
    if operation == "search":
        return http.get("/v1/profiles:search", params={"query": rng.choice(QUERIES)})
    return http.get("/v1/changes", params={"pageSize": 100})


async def _unloaded(
    http: httpx.AsyncClient, user_ids: list[str], calls: int
) -> dict[str, list[float]]:
    """The same operations one at a time on an idle stack: the rows' baseline."""
    rng = random.Random(-1)
    latencies: dict[str, list[float]] = {}
    for operation in ("get profile", "search", "list changes"):
        for _ in range(calls):
            started = time.perf_counter()
            (await _request(operation, http, rng, user_ids)).raise_for_status()
            latencies.setdefault(operation, []).append((time.perf_counter() - started) * 1000)
    return latencies


async def _client(
    number: int,
    http: httpx.AsyncClient,
    user_ids: list[str],
    until: float,
    latencies: dict[str, list[float]],
    errors: list[str],
) -> None:
    rng = random.Random(number)
    streaming = number % 10 == 0
    if streaming:
        try:
            async with http.stream("GET", "/v1/changes:stream", timeout=None) as response:
                if response.status_code != 200:
                    errors.append(f"stream: HTTP {response.status_code}")
                    return
                async for _ in response.aiter_lines():
                    if time.monotonic() > until:
                        return
        except httpx.HTTPError as error:
            if time.monotonic() < until:
                errors.append(f"stream: {type(error).__name__}")
        return
    while time.monotonic() < until:
        roll = rng.random()
        operation = "get profile" if roll < 0.4 else "search" if roll < 0.8 else "list changes"
        request = _request(operation, http, rng, user_ids)
        started = time.perf_counter()
        try:
            response = await request
        except httpx.HTTPError as error:
            errors.append(f"{operation}: {type(error).__name__}")
            continue
        latencies.setdefault(operation, []).append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            errors.append(f"{operation}: HTTP {response.status_code} {response.text[:120]}")


async def _load(
    stack: Stack, token: str, seconds: float, clients: int, idle_calls: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients * 2)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=headers, timeout=60, limits=limits, trust_env=False
    ) as http:
        http.headers["User-Agent"] = "profilesync-bench-idle"
        first = (await http.get("/v1/changes", params={"pageSize": 1000})).json()["events"]
        user_ids = [event["userId"] for event in first]
        unloaded = await _unloaded(http, user_ids, idle_calls)
        run = (await http.post("/v1/syncs", json={})).json()
        http.headers["User-Agent"] = LOAD_AGENT
        latencies: dict[str, list[float]] = {}
        errors: list[str] = []
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(_client(n, http, user_ids, until, latencies, errors) for n in range(clients))
        )
        # Polling, as any REST client of GET /v1/syncs/{id} does.
        while (state := (await http.get(f"/v1/syncs/{run['runId']}")).json())["state"] == "RUNNING":  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    gateway_log = stack.processes["gateway"].log_path.read_text(errors="replace")
    return {
        "latencies": latencies,
        "unloaded": unloaded,
        "errors": errors,
        "sync": state,
        "gateway": _gateway_latencies(gateway_log),
    }


def run(quick: bool) -> list[Result]:
    users, seconds, clients, idle_calls = (
        (1_000, 10.0, 20, 30) if quick else (10_000, 60.0, 50, 100)
    )
    # Closed loop: each client sends its next call as soon as the last is answered, so
    # the figures are those of a saturated machine (clients, gateway, services and the
    # emulator share its cores), not of a paced production load.
    workload = (
        f"{clients} LOB clients (closed loop, 1 in 10 streaming) for {seconds:.0f} s "
        f"during a sync of {users:,} users"
    )
    with tempfile.TemporaryDirectory(prefix="bench-load-") as state:
        options = StackOptions(state_dir=Path(state), users=users, log_level="WARNING")
        with Stack(options) as stack:
            token = emulator_token(stack.emulator_url, stack.ca_file, roles=["Profiles.Read"])
            with httpx.Client(
                base_url=stack.gateway_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=600,
            ) as http:
                run_id = http.post("/v1/syncs", json={}).json()["runId"]
                while http.get(f"/v1/syncs/{run_id}").json()["state"] == "RUNNING":
                    time.sleep(0.5)
            outcome = asyncio.run(_load(stack, token, seconds, clients, idle_calls))
    sync_seconds = sum(float(t["seconds"]) for t in outcome["sync"].get("timings", []))
    workload += f" (the sync took {sync_seconds:.0f} s of it)"
    results = []
    for operation, samples in sorted(outcome["latencies"].items()):
        idle = outcome["unloaded"][operation]
        at_gateway = outcome["gateway"].get(operation, [])
        for label, share in (("p50", 0.5), ("p99", 0.99)):
            results.append(
                Result(
                    f"under load: {operation} {label}",
                    f"{workload}; {len(samples):,} calls, timed by the clients; baseline: "
                    f"{len(idle)} calls one at a time before the sync",
                    round(_percentile(samples, share), 1),
                    "ms",
                    baseline=round(_percentile(idle, share), 1),
                )
            )
            results.append(
                Result(
                    f"under load: {operation} {label} at the gateway",
                    f"{workload}; the same {len(at_gateway):,} calls timed by Envoy (without "
                    "the load generator's own delays); baseline: timed by the clients",
                    round(_percentile(at_gateway, share), 1),
                    "ms",
                    baseline=round(_percentile(samples, share), 1),
                )
            )
    answered = sum(len(samples) for samples in outcome["latencies"].values())
    results.append(
        Result("under load: calls answered", workload, round(answered / seconds, 1), "calls/s")
    )
    errors = outcome["errors"]
    results.append(
        Result(
            "under load: errors",
            workload,
            len(errors),
            "errors",
            goal="0",
            met=not errors and outcome["sync"]["state"] == "SUCCEEDED",
        )
    )
    if errors:
        print("   errors (first 5):", *errors[:5], sep="\n   ")
    return results
