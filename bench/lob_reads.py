"""LOB reads from the synced store, and a new LOB app's bootstrap, through the gateway.

After a sync of the whole tenant:
- profile reads offered at a fixed rate (open loop: each call is sent at its
  scheduled time whatever the previous ones did, and timed from that time, so
  queueing shows), from the store (the default) and, as the baseline, with
  `?source=GRAPH` (what every read cost before the store was read);
- a full bootstrap: every page of `GET /v1/profiles` (1,000 a page), timed
  from the first request to the last page.
The Graph requests the store reads made are counted from the emulator's stats
(the goal is none). The sync itself runs at an unthrottled quota: it is not
what is measured here.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.results import Result
from devtools.devstack.lob_client import LobClient, emulator_http
from devtools.devstack.stack import Stack, StackOptions

__all__ = ["run"]

UNTHROTTLED = 1_000_000


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _offered_reads(
    gateway: str, token: str, ids: list[str], rate: float, seconds: float, params: dict[str, str]
) -> tuple[list[float], int]:
    """Latencies (ms) of GETs sent at `rate` per second for `seconds`, and the errors."""
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=gateway, headers=headers, limits=limits, timeout=30, trust_env=False
    ) as client:

        async def one(index: int, scheduled: float) -> None:
            nonlocal errors
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await client.get(f"/v1/profiles/{ids[index % len(ids)]}", params=params)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            # From the scheduled send time: a late send counts against the read.
            latencies.append((time.perf_counter() - scheduled) * 1000)
            errors += not ok

        start = time.perf_counter() + 0.5
        count = int(rate * seconds)
        await asyncio.gather(*(one(i, start + i / rate) for i in range(count)))
    return latencies, errors


def _bootstrap(lob: LobClient) -> tuple[float, int]:
    started = time.perf_counter()
    profiles, _ = lob.bootstrap(page_size=1000)
    return time.perf_counter() - started, len({p["id"] for p in profiles})


def _graph_requests(admin: httpx.Client) -> int:
    return int(admin.get("/_emulator/stats").json()["requests"])


def _measure(users: int, rate: float, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as state:
        options = StackOptions(
            state_dir=Path(state),
            users=users,
            env={"GRAPH_QUOTA_PER_10S": str(UNTHROTTLED), "LOG_LEVEL": "WARNING"},
        )
        with (
            Stack(options) as stack,
            emulator_http(stack.emulator_url, stack.ca_file) as admin,
            LobClient.on_stack(stack) as lob,
        ):
            admin.put("/_emulator/config", json={"quotaPer10s": UNTHROTTLED}).raise_for_status()
            run = lob.sync_and_wait(timeout=3600)
            if run["state"] != "SUCCEEDED":
                raise AssertionError(f"the sync ended {run['state']}: {run.get('error')}")
            bootstrap_seconds, listed = _bootstrap(lob)
            ids = [str(p["id"]) for p in lob.bootstrap(page_size=1000)[0]]
            before = _graph_requests(admin)
            stored, stored_errors = asyncio.run(
                _offered_reads(stack.gateway_url, lob.token, ids, rate, seconds, {})
            )
            graph_requests = _graph_requests(admin) - before
            from_graph, graph_errors = asyncio.run(
                _offered_reads(
                    stack.gateway_url, lob.token, ids, rate, seconds, {"source": "GRAPH"}
                )
            )
    return {
        "bootstrap": bootstrap_seconds,
        "listed": listed,
        "stored": stored,
        "stored_errors": stored_errors,
        "graph_requests": graph_requests,
        "graph": from_graph,
        "graph_errors": graph_errors,
    }


def run(quick: bool) -> list[Result]:
    users, rate, seconds = (2_000, 50.0, 4.0) if quick else (100_000, 200.0, 30.0)
    m = _measure(users, rate, seconds)
    workload = (
        f"{users:,} users synced; GET /v1/profiles/{{id}} offered at {rate:g}/s for "
        f"{seconds:g} s (open loop, timed from each call's scheduled send) through the gateway"
    )
    p99 = _percentile(m["stored"], 0.99)
    graph_p99 = _percentile(m["graph"], 0.99)
    return [
        Result(
            "LOB reads from the store: p50",
            workload,
            round(statistics.median(m["stored"]), 2),
            "ms",
            baseline=round(statistics.median(m["graph"]), 2),
        ),
        Result(
            "LOB reads from the store: p99",
            f"{workload}; baseline: the same reads with ?source=GRAPH",
            round(p99, 2),
            "ms",
            baseline=round(graph_p99, 2),
            goal="<= 10 ms",
            met=p99 <= 10,
        ),
        Result(
            "LOB reads from the store: Graph requests",
            workload,
            m["graph_requests"],
            "requests",
            goal="0",
            met=m["graph_requests"] == 0,
            required=True,
        ),
        Result(
            "LOB reads from the store: errors",
            f"{workload}; errors with ?source=GRAPH: {m['graph_errors']}",
            m["stored_errors"],
            "errors",
            goal="0",
            met=m["stored_errors"] == 0,
            required=True,
        ),
        Result(
            "bootstrap: every profile through the gateway",
            f"{users:,} users, GET /v1/profiles 1,000 a page, all pages; {m['listed']:,} listed",
            round(m["bootstrap"], 2),
            "s",
            goal="<= 15 s",
            met=m["bootstrap"] <= 15,
        ),
        Result(
            "bootstrap: profiles listed",
            f"{users:,} users",
            m["listed"],
            "profiles",
            goal=f"= {users:,}",
            met=m["listed"] == users,
            required=True,
        ),
    ]
