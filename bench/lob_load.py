"""LOB calls at a fixed arrival rate while a 100,000-user sync runs.

    python -m bench --only lob_load [--quick]

The whole stack, with the L-tier quota and Graph as slow as a real tenant's
(bench/graph_latency.py). After a first sync (not measured), a resync is
started and, from `POST /v1/syncs` to the run's end, LOB calls are offered
on a fixed schedule: 100 calls/s (40% get a profile, 40% search, 20% list
changes), each sent at its scheduled time whether or not earlier calls were
answered (an open loop: a slow stack cannot slow the load down), while 5
more LOB clients hold the change stream open.

Latency is measured two ways:
- from each call's scheduled send time to its answer, at the load generator:
  a queue anywhere (the stack, or the generator itself on this shared
  machine) shows, none is hidden by waiting for an answer before sending;
- at the gateway: Envoy's own duration for each of these calls, request in
  to response out.
Goal p99 ≤ 100 ms for each operation, and 0 errors. The baseline is the same
operation one call at a time on the idle stack before the sync. Getting a
profile reads the store the syncs keep (no Graph call): the sync's own Graph
traffic does not stand in its way.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.graph_latency import realistic_latency
from bench.http_load import Connections, HttpError
from bench.results import Result
from devtools.devstack.lob_client import LobClient, emulator_http
from devtools.devstack.stack import Stack, StackOptions

__all__ = ["run"]

RATE = 100.0  # calls per second offered
# The load generator's connections, as a LOB app's HTTP client pool would bound them: a call
# due while all are busy waits for one, and that wait counts in its latency.
CONNECTIONS = 100
STREAMS = 5
P99_GOAL_MS = 100.0
QUERIES = (
    "skills:python",
    "kubernetes",
    "interests:chess OR interests:yoga",
    "data*",
    '"project management"',
)
OPERATIONS = ("get profile", "search", "list changes")
# Marks requests in the gateway's access log: the load's, apart from the idle baseline's.
LOAD_AGENT = "profilesync-bench-load"
IDLE_AGENT = "profilesync-bench-idle"


def operation_of(path: str) -> str | None:
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


def gateway_latencies(access_log: str, agent: str) -> dict[str, list[float]]:
    """What Envoy measured for one client's calls, by operation (milliseconds)."""
    latencies: dict[str, list[float]] = {}
    for line in access_log.splitlines():
        if agent not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        operation = operation_of(str(entry.get("path", "")))
        if operation is not None and entry.get("userAgent") == agent:
            latencies.setdefault(operation, []).append(float(entry["durationMs"]))
    return latencies


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def schedule(rate: float, started: float, number: int) -> float:
    """When call `number` is due: a fixed arrival rate from `started`, whatever came before."""
    return started + number / rate


def target(operation: str, rng: random.Random, user_ids: list[str]) -> str:
    """The path and query a LOB app calls for `operation`."""
    if operation == "get profile":
        return f"/v1/profiles/{rng.choice(user_ids)}"
    if operation == "search":
        return "/v1/profiles:search?" + urlencode({"query": rng.choice(QUERIES)})
    return "/v1/changes?pageSize=100"


@dataclass
class Load:
    """The open-loop load's outcome: latency from each call's scheduled time, errors."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    # How late each call left the generator's schedule (ms): its own lag, shown apart.
    send_lag: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    offered: int = 0
    seconds: float = 0.0

    async def call(
        self, operation: str, request: Callable[[], Awaitable[tuple[int, bytes]]], scheduled: float
    ) -> None:
        """One call due at `scheduled`: its latency runs from then to its answer."""
        self.send_lag.append((time.monotonic() - scheduled) * 1000)
        try:
            status, body = await request()
        except HttpError as error:
            self.errors.append(f"{operation}: {error}")
            return
        self.latencies.setdefault(operation, []).append((time.monotonic() - scheduled) * 1000)
        if status != 200:
            self.errors.append(f"{operation}: HTTP {status} {body[:120].decode(errors='replace')}")


async def _stream(http: httpx.AsyncClient, until: asyncio.Event, errors: list[str]) -> None:
    """A LOB client holding the change stream open until the sync ends."""
    try:
        async with http.stream("GET", "/v1/changes:stream", timeout=None) as response:
            if response.status_code != 200:
                errors.append(f"stream: HTTP {response.status_code}")
                return
            async for _ in response.aiter_lines():
                if until.is_set():
                    return
    except httpx.HTTPError as error:
        if not until.is_set():
            errors.append(f"stream: {type(error).__name__}")


async def _open_loop(
    http: httpx.AsyncClient,
    connections: Connections,
    user_ids: list[str],
    until: asyncio.Event,
    rate: float,
) -> Load:
    rng = random.Random(7)
    load = Load()
    calls: list[asyncio.Future[None]] = []
    streams = [asyncio.ensure_future(_stream(http, until, load.errors)) for _ in range(STREAMS)]
    started = time.monotonic()
    while not until.is_set():
        due = schedule(rate, started, load.offered)
        # Behind schedule, still give the calls in flight their turn: sleep(0) yields.
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        roll = rng.random()
        operation = OPERATIONS[0] if roll < 0.4 else OPERATIONS[1] if roll < 0.8 else OPERATIONS[2]
        request = functools.partial(connections.get, target(operation, rng, user_ids))
        calls.append(asyncio.ensure_future(load.call(operation, request, due)))
        load.offered += 1
    load.seconds = time.monotonic() - started
    await asyncio.gather(*calls)
    for stream in streams:
        stream.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    return load


async def _idle(http: httpx.AsyncClient, user_ids: list[str], calls: int) -> None:
    """The same operations one at a time on the idle stack (timed at the gateway)."""
    rng = random.Random(-1)
    for operation in OPERATIONS:
        for _ in range(calls):
            (await http.get(target(operation, rng, user_ids))).raise_for_status()


async def _during_sync(
    gateway_url: str, token: str, user_ids: list[str], idle_calls: int
) -> tuple[Load, dict[str, Any]]:
    async with httpx.AsyncClient(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {token}", "User-Agent": IDLE_AGENT},
        timeout=60,
        # The change streams' connections and one to poll the run.
        limits=httpx.Limits(max_connections=STREAMS + 1),
        trust_env=False,
    ) as http:
        await _idle(http, user_ids, idle_calls)
        http.headers["User-Agent"] = LOAD_AGENT
        ended = asyncio.Event()
        response = await http.post("/v1/syncs", json={})
        response.raise_for_status()
        run_id = response.json()["runId"]
        headers = {"Authorization": f"Bearer {token}", "User-Agent": LOAD_AGENT}
        async with Connections(gateway_url, CONNECTIONS, headers) as connections:
            load = asyncio.ensure_future(_open_loop(http, connections, user_ids, ended, RATE))
            while True:  # polling, as any REST client of GET /v1/syncs/{id} does
                await asyncio.sleep(0.5)
                state = (await http.get(f"/v1/syncs/{run_id}")).json()
                if state["state"] != "RUNNING":
                    break
            ended.set()
            return await load, state


def _measure(users: int, idle_calls: int) -> tuple[Load, dict[str, Any], str, str]:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as state:
        options = StackOptions(state_dir=Path(state), users=users, log_level="WARNING")
        with Stack(options) as stack:
            with emulator_http(stack.emulator_url, stack.ca_file) as admin:
                model = realistic_latency(admin)
            with LobClient.on_stack(stack) as lob:
                first = lob.sync_and_wait(timeout=3600)
                if first["state"] != "SUCCEEDED":
                    raise RuntimeError(f"the first sync ended {first['state']}: {first['error']}")
                page = lob.http.get("/v1/changes", params={"pageSize": 1000})
                page.raise_for_status()
                user_ids = [event["userId"] for event in page.json()["events"]]
                load, sync = asyncio.run(
                    _during_sync(stack.gateway_url, lob.token, user_ids, idle_calls)
                )
            access_log = stack.processes["gateway"].log_path.read_text(errors="replace")
    return load, sync, access_log, model.describe()


def run(quick: bool) -> list[Result]:
    return measured_rows(*((1_000, 30) if quick else (100_000, 100)))


def measured_rows(users: int, idle_calls: int) -> list[Result]:
    """The rows for a tenant of `users`, with `idle_calls` of each operation as the baseline."""
    load, sync, access_log, latency = _measure(users, idle_calls)
    at_gateway = gateway_latencies(access_log, LOAD_AGENT)
    idle = gateway_latencies(access_log, IDLE_AGENT)
    sent = load.offered / load.seconds
    workload = (
        f"{RATE:g} calls/s offered on a fixed schedule (open loop; {sent:.1f}/s sent) and "
        f"{STREAMS} change streams, during a resync of {users:,} users "
        f"({load.seconds:.0f} s; Graph: {latency})"
    )
    results = []
    for operation in OPERATIONS:
        scheduled = load.latencies.get(operation, [])
        gateway = at_gateway.get(operation, [])
        baseline = idle.get(operation, [])
        for label, share in (("p50", 0.5), ("p99", 0.99)):
            goal = label == "p99"
            results.append(
                Result(
                    f"under load: {operation} {label} at the gateway",
                    f"{workload}; {len(gateway):,} calls timed by Envoy; baseline: "
                    f"{len(baseline)} calls one at a time on the idle stack",
                    round(percentile(gateway, share), 1),
                    "ms",
                    baseline=round(percentile(baseline, share), 1),
                    goal=f"<= {P99_GOAL_MS:g} ms" if goal else None,
                    met=percentile(gateway, share) <= P99_GOAL_MS if goal else None,
                )
            )
            results.append(
                Result(
                    f"under load: {operation} {label} from its scheduled time",
                    f"{workload}; the same {len(scheduled):,} calls, from when each was due "
                    "to its answer at the load generator; baseline: at the gateway",
                    round(percentile(scheduled, share), 1),
                    "ms",
                    baseline=round(percentile(gateway, share), 1),
                    goal=f"<= {P99_GOAL_MS:g} ms" if goal else None,
                    met=percentile(scheduled, share) <= P99_GOAL_MS if goal else None,
                )
            )
    results.append(
        Result(
            "under load: load generator's own send lag p99",
            f"{workload}; how late calls left the generator against their schedule (a lag "
            "here is the generator's, not the stack's)",
            round(percentile(load.send_lag, 0.99), 1),
            "ms",
        )
    )
    errors = load.errors
    results.append(
        Result(
            "under load: errors",
            f"{workload}; the sync ended {sync['state']}",
            len(errors),
            "errors",
            goal="0",
            met=not errors and sync["state"] == "SUCCEEDED",
        )
    )
    if errors:
        print("   errors (first 5):", *errors[:5], sep="\n   ")
    return results
