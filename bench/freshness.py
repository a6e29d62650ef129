"""Freshness: from an edit made in Delve to the change event on a LOB app's stream.

    python -m bench --only freshness [--quick]

The whole stack (real Redis, the Graph emulator, the services, Envoy). A LOB
subscriber holds `GET /v1/changes:stream` open through the gateway. Then, one
at a time: a user's `aboutMe` is edited through the emulator's admin API (as
in Delve), a sync is started at once (`POST /v1/syncs`), and the clock stops
when the stream delivers that user's UPDATED event with the new text.

In production a sync starts on a schedule, so an edit waits up to one
interval before the run that carries it; the goal is that the run itself
never takes that long. The baseline is the run's own wall time from its run
record: value / baseline shows how much of freshness the sync is.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.graph_users import graph_users
from bench.results import Result
from services.devstack.lob_client import LobClient, edit_in_delve
from services.devstack.stack import Stack, StackOptions

__all__ = ["run"]

# The chart's default schedule (charts/profile-sync/values.yaml differ.schedule: */15 * * * *).
SYNC_INTERVAL_SECONDS = 15 * 60
# An event not on the stream by then counts as lost.
ARRIVAL_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Arrival:
    at: float  # time.perf_counter() when the line was read
    event: dict[str, Any]


class ChangeStream:
    """A LOB subscriber of the REST change stream, on its own thread.

    It resumes from the last cursor it saw (events or heartbeats) if the
    stream is cut, as a LOB app should; `reconnects` counts such cuts.
    """

    def __init__(self, gateway_url: str, token: str) -> None:
        self.arrivals: queue.Queue[Arrival] = queue.Queue()
        self.ready = threading.Event()  # the first heartbeat: the stream is open
        self.reconnects = 0
        self._cursor = ""
        self._stop = threading.Event()
        self._http = httpx.Client(
            base_url=gateway_url,
            headers={"Authorization": f"Bearer {token}"},
            # Heartbeats every second keep reads short and let `close` end the thread.
            timeout=httpx.Timeout(30.0),
            trust_env=False,
        )
        self._thread = threading.Thread(target=self._consume, name="change-stream", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self.ready.wait(timeout):
            raise TimeoutError(f"no heartbeat on /v1/changes:stream within {timeout:g} s")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._http.close()

    def _consume(self) -> None:
        while not self._stop.is_set():
            params: dict[str, Any] = {"heartbeatSeconds": 1}
            if self._cursor:
                params["afterCursor"] = self._cursor
            try:
                with self._http.stream("GET", "/v1/changes:stream", params=params) as response:
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.strip():
                            self._receive(json.loads(line))
            except (httpx.HTTPError, ValueError):
                if self._stop.is_set():
                    return
                self.reconnects += 1
                time.sleep(0.5)

    def _receive(self, item: dict[str, Any]) -> None:
        at = time.perf_counter()
        event: dict[str, Any] = item.get("result", item)
        self._cursor = event.get("cursor") or self._cursor
        if event.get("heartbeat"):
            self.ready.set()
        elif event.get("eventId"):
            self.arrivals.put(Arrival(at, event))

    def wait_for(self, user_id: str, about_me: str, timeout: float) -> float | None:
        """When the event carrying this edit arrived, or None if it did not in time."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                arrival = self.arrivals.get(timeout=left)
            except queue.Empty:
                return None
            event = arrival.event
            if event.get("userId") == user_id and event.get("after", {}).get("aboutMe") == about_me:
                return arrival.at
        return None


def _run_seconds(run: dict[str, Any]) -> float:
    """The run's wall time from its own record (start_time to end_time)."""
    start = dt.datetime.fromisoformat(run["startTime"])
    end = dt.datetime.fromisoformat(run["endTime"])
    return (end - start).total_seconds()


@dataclass(frozen=True)
class Measured:
    freshness: float | None  # None: the event never arrived
    sync_seconds: float
    sync_state: str


def _measure(stack: Stack, users: list[dict[str, Any]]) -> tuple[list[Measured], int]:
    lob = LobClient.on_stack(stack)
    stream = ChangeStream(stack.gateway_url, lob.token)
    try:
        first = lob.sync_and_wait()  # the baseline: every user CREATED, not measured
        if first["state"] != "SUCCEEDED":
            raise RuntimeError(f"first sync ended {first['state']}: {first.get('error')}")
        stream.start()  # from now on: the first sync's events are behind it
        measured = []
        for number, user in enumerate(users):
            about_me = f"Edited in Delve, freshness check {number} ({uuid.uuid4().hex[:8]})"
            edit_in_delve(stack.emulator_url, stack.ca_file, user["id"], aboutMe=about_me)
            edited = time.perf_counter()
            response = lob.http.post("/v1/syncs", json={})
            response.raise_for_status()
            arrived = stream.wait_for(user["id"], about_me, ARRIVAL_TIMEOUT_SECONDS)
            run = lob.wait_for_run(response.json(), ARRIVAL_TIMEOUT_SECONDS)
            measured.append(
                Measured(
                    None if arrived is None else arrived - edited,
                    _run_seconds(run),
                    str(run["state"]),
                )
            )
        return measured, stream.reconnects
    finally:
        stream.close()
        lob.close()


def run(quick: bool) -> list[Result]:
    user_count, edits = (100, 1) if quick else (1_000, 5)
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as state:
        options = StackOptions(state_dir=Path(state), users=user_count, log_level="WARNING")
        with Stack(options) as stack:
            tenant = graph_users(stack.emulator_url, stack.ca_file, user_count)
            # Spread over the tenant: different users, different $batch groups.
            chosen = [tenant[(i * 37) % len(tenant)] for i in range(edits)]
            measured, reconnects = _measure(stack, chosen)
    workload = (
        f"{user_count:,} users, {edits} edit{'s' if edits > 1 else ''} one at a time, "
        "each followed by POST /v1/syncs; REST stream through the gateway"
    )
    arrived = [m for m in measured if m.freshness is not None]
    lost = len(measured) - len(arrived)
    failed_runs = [m.sync_state for m in measured if m.sync_state != "SUCCEEDED"]
    if reconnects:
        print(f"   the change stream was cut {reconnects} time(s) and resumed")
    if failed_runs:
        print(f"   runs that did not succeed: {', '.join(failed_runs)}")
    goal = f"<= {SYNC_INTERVAL_SECONDS:,} s (one sync interval: default schedule every 15 min)"
    results = []
    if arrived:
        times = [m.freshness for m in arrived if m.freshness is not None]
        median = statistics.median(times)
        slowest = max(arrived, key=lambda m: m.freshness or 0.0)
        worst = slowest.freshness or 0.0
        results += [
            Result(
                "freshness: Delve edit to LOB stream, median",
                f"{workload}; baseline: the sync run's wall time",
                round(median, 3),
                "s",
                baseline=round(statistics.median(m.sync_seconds for m in arrived), 3),
                goal=goal,
                met=median <= SYNC_INTERVAL_SECONDS,
            ),
            Result(
                "freshness: Delve edit to LOB stream, max",
                f"{workload}; baseline: that edit's sync run wall time",
                round(worst, 3),
                "s",
                baseline=round(slowest.sync_seconds, 3),
                goal=goal,
                met=worst <= SYNC_INTERVAL_SECONDS,
            ),
        ]
    results.append(
        Result(
            "freshness: events lost",
            f"{workload}; not on the stream within {ARRIVAL_TIMEOUT_SECONDS:g} s",
            lost,
            "events",
            goal="0",
            met=lost == 0 and not failed_runs,
            required=True,
        )
    )
    return results
