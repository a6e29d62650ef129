"""Freshness against a schedule: from an edit made in Delve to the change event
on a LOB app's stream, with syncs on a schedule rather than started at the edit.

    python -m bench --only freshness [--quick]

The whole stack (real Redis, the Graph emulator, the services, Envoy). A LOB
subscriber holds `GET /v1/changes:stream` open through the gateway. Edits to
users' `aboutMe` arrive as a random process (seeded, so each mode replays the
same edits at the same offsets) through the emulator's admin API, as in Delve,
against two schedules with the same interval:

  (a) today's: a full read as fast as the Graph budget allows at the start of
      every interval (`POST /v1/syncs` each interval);
  (b) the paced sweeper (`python -m services.snapshot_differ sweep`): every
      user read once per interval, the reads spread evenly over it, and the
      users seen changing read again on the hot cycle (HOT_SHARE of the
      budget, the default; the cycle's times scaled as the clock is).

Two edit workloads: uniform (Poisson, every user alike) and bursty (10% of
users make 80% of the edits; half of all edits are followed by another from
the same user within 10 minutes).

Each segment starts one follow-up span (10 minutes, scaled) before the edits
that are timed: the edits of that warm-up are made like the others but not
timed, so every timed follow-up comes after the edit it follows, as it would
at any moment of a working day (without it, the follow-ups of sittings that
began before the window would be timed as first edits), and the schedule
and the sweeper are in their steady state when timing starts. The row says
which share of the timed edits follow another from the same user.

The clock is scaled: 1 bench second stands for SCALE real seconds. The
issue's setting (a 5-minute interval, a Graph quota at which one full read of
10,000 users takes about 2 minutes, follow-up edits within 10 minutes) becomes
a 60 s interval, a quota at which the full read takes about 24 s, and
follow-ups within 2 minutes: the same ratios. Graph RUs per hour are scaled
back to real time (the same reads per interval, over an interval SCALE times
longer); peak RUs in any 10 s are compared with the quota at the same scale.
The time to publish is not scaled: the goals allow it on top of the interval.
The hot cycle's defaults (a first re-read after 15 s, out after 10 quiet
minutes) are scaled too: 3 s and 2 minutes.
"""

from __future__ import annotations

import json
import math
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.graph_users import graph_users
from bench.results import Result
from devtools.devstack.lob_client import LobClient, edit_in_delve, emulator_http
from devtools.devstack.stack import Stack, StackOptions
from devtools.graph_emulator.throttle import UNIT_WINDOW_SECONDS
from services.snapshot_differ.settings import DifferSettings

__all__ = ["ChangeStream", "run"]

# One bench second stands for this many real seconds.
SCALE = 5
# What the goals allow on top of the interval for comparing and publishing an
# edit once it is read (a paced run's compare batch waits up to 0.5 s for more profiles);
# wall time, not scaled.
PUBLISH_SECONDS = 5.0
# Of the edits that were made, this share goes to the busiest users (bursty).
HOT_USERS, HOT_SHARE = 0.10, 0.80
# Bursty: this share of all edits is followed by another from the same user.
FOLLOW_UP_SHARE = 0.5
SEED = 19
# The sweeper's hot cycle, in real seconds (its defaults: DifferSettings).
HOT_REREAD_SECONDS = DifferSettings.hot_reread_seconds
HOT_QUIET_SECONDS = DifferSettings.hot_quiet_seconds


@dataclass(frozen=True)
class Plan:
    users: int
    interval: float  # seconds (bench time)
    quota_per_10s: int  # the Graph quota, RU per 10 s (bench time)
    edits_per_second: float
    edit_window: float  # timed edits fall in [0, edit_window) of a segment
    warm_up: float  # untimed edits (and the schedule or sweeper) start this much earlier
    intervals: int  # a segment lasts this many intervals
    follow_up_within: float  # bursty: a follow-up comes within this (bench time)
    workloads: tuple[str, ...]


# 10,000 users; the quota lets one full read (10,000 profile reads and the
# listing) take about 24 s; a 60 s interval: 2 min and 5 min in real time.
FULL = Plan(
    users=10_000,
    interval=60.0,
    quota_per_10s=4_200,
    edits_per_second=1.5,
    # A whole number of intervals: every moment of an interval is as likely.
    edit_window=120.0,
    warm_up=600.0 / SCALE,  # one follow-up span; a whole number of intervals
    intervals=3,
    follow_up_within=600.0 / SCALE,
    workloads=("uniform", "bursty"),
)
# Proves the suite works, judges no timing.
QUICK = Plan(
    users=200,
    interval=10.0,
    quota_per_10s=2_000,
    edits_per_second=2.0,
    edit_window=8.0,
    warm_up=10.0,
    intervals=2,
    follow_up_within=10.0,
    workloads=("bursty",),
)

MODES = {
    "schedule": "(a) a full read every interval",
    "sweeper": "(b) paced sweeper",
}


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

    def drain(self) -> list[Arrival]:
        """Every arrival since the last call."""
        taken = []
        while True:
            try:
                taken.append(self.arrivals.get_nowait())
            except queue.Empty:
                return taken


# -- the edits ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    at: float  # seconds after timing starts (bench time); negative: a warm-up edit
    user_id: str


def uniform_edits(users: list[str], plan: Plan, rng: random.Random) -> list[Edit]:
    """A Poisson process over the warm-up and the window, every user as likely as any other."""
    edits, at = [], -plan.warm_up + rng.expovariate(plan.edits_per_second)
    while at < plan.edit_window:
        edits.append(Edit(at, rng.choice(users)))
        at += rng.expovariate(plan.edits_per_second)
    return edits


def bursty_edits(users: list[str], plan: Plan, rng: random.Random) -> list[Edit]:
    """Sittings: a first edit (Poisson; a user of the busiest 10% with 80%
    chance), each edit followed by another from the same user within
    `follow_up_within` with probability 1/2, so half of all edits have a
    follow-up. Sittings start before the warm-up too, so its start looks like
    any other moment."""
    shuffled = users[:]
    rng.shuffle(shuffled)
    hot_count = max(1, int(len(users) * HOT_USERS))
    hot, cold = shuffled[:hot_count], shuffled[hot_count:] or shuffled
    # Each sitting has 1 / (1 - FOLLOW_UP_SHARE) edits on average.
    rate = plan.edits_per_second * (1 - FOLLOW_UP_SHARE)
    edits = []
    at = -plan.warm_up - plan.follow_up_within * 3
    while True:
        at += rng.expovariate(rate)
        if at >= plan.edit_window:
            break
        user = rng.choice(hot) if rng.random() < HOT_SHARE else rng.choice(cold)
        when = at
        while True:
            if -plan.warm_up <= when < plan.edit_window:
                edits.append(Edit(when, user))
            if rng.random() >= FOLLOW_UP_SHARE:
                break
            when += rng.uniform(0, plan.follow_up_within)
    return sorted(edits, key=lambda e: e.at)


def follow_up_share(edits: list[Edit], within: float) -> float:
    """Share of the timed edits made within `within` of an earlier edit by the same user."""
    last: dict[str, float] = {}
    timed = follows = 0
    for edit in sorted(edits, key=lambda e: e.at):
        if edit.at >= 0:
            timed += 1
            follows += edit.user_id in last and edit.at - last[edit.user_id] <= within
        last[edit.user_id] = edit.at
    return follows / timed if timed else 0.0


WORKLOADS: dict[str, Callable[[list[str], Plan, random.Random], list[Edit]]] = {
    "uniform": uniform_edits,
    "bursty": bursty_edits,
}


@dataclass
class Made:
    user_id: str
    about_me: str
    at: float  # perf_counter() once the emulator took the edit
    timed: bool  # False: a warm-up edit


class EditPlayer(threading.Thread):
    """Applies the edits at their offsets from `start`, through the emulator's admin API."""

    def __init__(self, stack: Stack, edits: list[Edit], start: float, tag: str) -> None:
        super().__init__(name="edits", daemon=True)
        self._stack, self._edits, self._start, self._tag = stack, edits, start, tag
        self.made: list[Made] = []
        self.late = 0.0  # the most an edit was made after its offset

    def run(self) -> None:
        for number, edit in enumerate(self._edits):
            time.sleep(max(0.0, self._start + edit.at - time.perf_counter()))
            self.late = max(self.late, time.perf_counter() - self._start - edit.at)
            about_me = f"Edited in Delve, {self._tag} #{number} ({uuid.uuid4().hex[:8]})"
            edit_in_delve(
                self._stack.emulator_url, self._stack.ca_file, edit.user_id, aboutMe=about_me
            )
            self.made.append(Made(edit.user_id, about_me, time.perf_counter(), edit.at >= 0))


def latencies(made: list[Made], arrivals: list[Arrival]) -> list[float | None]:
    """Per edit: from the edit to the first event carrying it or a later edit of
    the same user (a later read may cover two edits at once); None: lost."""
    order: dict[str, dict[str, int]] = defaultdict(dict)
    edit_index = []
    for edit in made:
        texts = order[edit.user_id]
        texts[edit.about_me] = len(texts)
        edit_index.append(texts[edit.about_me])
    seen: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for arrival in arrivals:
        user = arrival.event.get("userId", "")
        text = (arrival.event.get("after") or {}).get("aboutMe")
        if text in order.get(user, {}):
            seen[user].append((arrival.at, order[user][text]))
    result: list[float | None] = []
    for edit, index in zip(made, edit_index, strict=True):
        times = [at for at, carried in seen[edit.user_id] if carried >= index]
        result.append(min(times) - edit.at if times else None)
    return result


# -- one segment: a workload against a mode -----------------------------------------------


@dataclass
class Outcome:
    latencies: list[float]
    lost: int
    resource_units: int  # over `intervals` intervals
    peak_units_per_10s: int
    notes: list[str] = field(default_factory=list)


def _start_sync(lob: LobClient, wait: float = 30.0) -> dict[str, Any] | None:
    """POST /v1/syncs; None if a run of the shard is still going after `wait`."""
    deadline = time.monotonic() + wait
    while True:
        response = lob.http.post("/v1/syncs", json={})
        if response.status_code != 409:
            response.raise_for_status()
            return dict(response.json())
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def _segment(
    stack: Stack, lob: LobClient, stream: ChangeStream, mode: str, edits: list[Edit], plan: Plan
) -> Outcome:
    tag = f"{mode} {uuid.uuid4().hex[:6]}"
    with emulator_http(stack.emulator_url, stack.ca_file) as admin:
        # The emulator's peak counts the units in its sliding window, which a
        # stats reset keeps: let the previous segment's reads leave it first.
        time.sleep(UNIT_WINDOW_SECONDS + 1)
        stream.drain()
        # Timing starts after the warm-up (bench time 0).
        start = time.perf_counter() + plan.warm_up
        player = EditPlayer(stack, edits, start, tag)
        sweeper = None
        if mode == "sweeper":
            sweeper = subprocess.Popen(
                [sys.executable, "-m", "services.snapshot_differ", "sweep"],
                env={
                    **stack.differ_env(),
                    "SYNC_INTERVAL_SECONDS": str(int(plan.interval)),
                    # The defaults (15 s, 600 s) on the bench's clock.
                    "HOT_REREAD_SECONDS": str(HOT_REREAD_SECONDS / SCALE),
                    "HOT_QUIET_SECONDS": str(HOT_QUIET_SECONDS / SCALE),
                    "LOG_LEVEL": "WARNING",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        player.start()
        outcome = Outcome([], 0, 0, 0)
        counting = False  # the emulator's stats count from bench time 0
        stats: dict[str, Any] | None = None
        arrivals: list[Arrival] = []
        last_run: dict[str, Any] | None = None
        ticks = 0
        # Every edit is read within one interval: one more for the slowest, then it is lost.
        deadline = start + plan.edit_window + 2 * plan.interval + 30
        try:
            while True:
                now = time.perf_counter() - start
                if not counting and now >= 0:
                    admin.delete("/_emulator/stats").raise_for_status()
                    counting = True
                if stats is None and now >= plan.intervals * plan.interval:
                    # The segment's Graph spend: `intervals` whole intervals.
                    stats = admin.get("/_emulator/stats").json()
                if mode == "schedule" and now >= ticks * plan.interval - plan.warm_up:
                    ticks += 1
                    # The first waits for the previous segment's run to let go of the shard.
                    started = _start_sync(lob, wait=10.0 if ticks == 1 else 0.0)
                    if started is None:
                        outcome.notes.append(f"interval {ticks}: the previous run was still going")
                    last_run = started or last_run
                arrivals += stream.drain()
                if stats is not None and not player.is_alive():
                    measured = latencies(player.made, arrivals)
                    if all(m is not None for m in measured) or time.perf_counter() > deadline:
                        break
                time.sleep(0.1)
        finally:
            if sweeper is not None:
                sweeper.terminate()  # by its own pid; its run is recorded as interrupted
                sweeper.wait(timeout=60)
            player.join(timeout=60)
        if last_run is not None:
            lob.wait_for_run(last_run, timeout=600)
    assert stats is not None
    measured = [
        latency
        for made, latency in zip(player.made, latencies(player.made, arrivals), strict=True)
        if made.timed
    ]
    outcome.latencies = [m for m in measured if m is not None]
    outcome.lost = sum(1 for m in measured if m is None)
    outcome.resource_units = int(stats["resourceUnits"])
    outcome.peak_units_per_10s = int(stats["peakResourceUnitsPer10s"])
    if player.late > 1.0:
        outcome.notes.append(f"an edit was made {player.late:.1f} s after its time")
    return outcome


# -- the figures --------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _rows(
    workload: str, plan: Plan, outcomes: dict[str, Outcome], edits: list[Edit], quick: bool
) -> list[Result]:
    real_interval = plan.interval * SCALE
    limit = plan.interval + PUBLISH_SECONDS
    timed = sum(1 for edit in edits if edit.at >= 0)
    follows = follow_up_share(edits, plan.follow_up_within)
    describe = (
        f"{plan.users:,} users, {workload} edits ({timed} timed per mode, "
        f"{follows:.0%} of them within {plan.follow_up_within:g} s of an edit by the same user, "
        f"after {plan.warm_up:g} s of untimed ones; seeded, the same for both), interval "
        f"{plan.interval:g} s standing for {real_interval:g} s "
        f"(clock scaled 1:{SCALE}), Graph quota {plan.quota_per_10s:,} RU/10 s"
    )
    rows: list[Result] = []
    schedule = outcomes["schedule"]

    def judged(ok: bool) -> bool | None:
        return None if quick else ok

    for mode, label in MODES.items():
        outcome = outcomes[mode]
        times = outcome.latencies or [math.nan]
        median, p90 = statistics.median(times), _percentile(times, 0.90)
        p99, worst = _percentile(times, 0.99), max(times)
        where = f"{describe}; {label}"
        name = f"freshness on a schedule, {workload}, {label}"
        if mode == "sweeper":
            base = statistics.median(schedule.latencies or [math.nan])
            if workload == "bursty":
                goal = f"<= 0.5 x (a)'s median ({0.5 * base:.1f} s)"
                ok = median <= 0.5 * base
            else:
                goal = f"<= (a)'s median ({base:.1f} s): no worse"
                ok = median <= base
            rows.append(
                Result(
                    f"{name}: edit to LOB event, median",
                    where,
                    round(median, 2),
                    "s",
                    baseline=round(base, 2),
                    goal=goal,
                    met=judged(ok),
                )
            )
        else:
            rows.append(Result(f"{name}: edit to LOB event, median", where, round(median, 2), "s"))
        rows.append(Result(f"{name}: edit to LOB event, p90", where, round(p90, 2), "s"))
        goal = f"<= the interval + publish ({plan.interval:g} + {PUBLISH_SECONDS:g} s)"
        if mode == "sweeper" and workload == "uniform":
            # No worse than (a) also in the tail.
            p99_a = _percentile(schedule.latencies or [math.nan], 0.99)
            goal += f", and <= (a)'s p99 ({p99_a:.1f} s)"
            p99_ok = p99 <= limit and p99 <= p99_a
        else:
            p99_ok = p99 <= limit
        rows.append(
            Result(
                f"{name}: edit to LOB event, p99",
                where,
                round(p99, 2),
                "s",
                goal=goal,
                met=judged(p99_ok),
            )
        )
        rows.append(
            Result(
                f"{name}: edit to LOB event, max",
                where,
                round(worst, 2),
                "s",
                goal=f"<= the interval + publish ({limit:g} s)",
                met=judged(worst <= limit),
            )
        )
        rows.append(
            Result(
                f"{name}: events lost",
                f"{where}; not on the stream within 2 intervals",
                outcome.lost,
                "events",
                goal="0",
                met=outcome.lost == 0,
                required=True,
            )
        )
        # The same reads per interval over an interval SCALE times longer.
        seconds = plan.intervals * plan.interval
        per_hour = outcome.resource_units / (seconds * SCALE) * 3600
        spend = (
            f"{where}; {outcome.resource_units:,} RU over {plan.intervals} intervals, per real hour"
        )
        if mode == "sweeper":
            base_hour = schedule.resource_units / (seconds * SCALE) * 3600
            rows.append(
                Result(
                    f"{name}: Graph RU per hour",
                    spend,
                    round(per_hour),
                    "RU/h",
                    baseline=round(base_hour),
                    goal="<= 1.25 x (a)'s",
                    met=judged(per_hour <= 1.25 * base_hour),
                )
            )
            rows.append(
                Result(
                    f"{name}: peak Graph RU in any 10 s",
                    where,
                    outcome.peak_units_per_10s,
                    "RU",
                    baseline=plan.quota_per_10s,
                    goal="<= 50% of the quota",
                    met=judged(outcome.peak_units_per_10s <= 0.5 * plan.quota_per_10s),
                )
            )
        else:
            rows.append(Result(f"{name}: Graph RU per hour", spend, round(per_hour), "RU/h"))
            rows.append(
                Result(
                    f"{name}: peak Graph RU in any 10 s",
                    where,
                    outcome.peak_units_per_10s,
                    "RU",
                    baseline=plan.quota_per_10s,
                )
            )
        for note in outcome.notes:
            print(f"   {workload}, {label}: {note}")
    return rows


def run(quick: bool) -> list[Result]:
    plan = QUICK if quick else FULL
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as state:
        options = StackOptions(
            state_dir=Path(state),
            users=plan.users,
            log_level="WARNING",
            env={"GRAPH_QUOTA_PER_10S": str(plan.quota_per_10s)},
        )
        with Stack(options) as stack:
            with emulator_http(stack.emulator_url, stack.ca_file) as admin:
                admin.put(
                    "/_emulator/config", json={"quotaPer10s": plan.quota_per_10s}
                ).raise_for_status()
            users = [u["id"] for u in graph_users(stack.emulator_url, stack.ca_file, plan.users)]
            with LobClient.on_stack(stack) as lob:
                first = lob.sync_and_wait()  # the baseline: every user CREATED, not measured
                if first["state"] != "SUCCEEDED":
                    raise RuntimeError(f"first sync ended {first['state']}: {first.get('error')}")
                stream = ChangeStream(stack.gateway_url, lob.token)
                stream.start()
                try:
                    for workload in plan.workloads:
                        edits = WORKLOADS[workload](users, plan, random.Random(SEED))
                        outcomes = {
                            mode: _segment(stack, lob, stream, mode, edits, plan) for mode in MODES
                        }
                        results += _rows(workload, plan, outcomes, edits, quick)
                finally:
                    stream.close()
                if stream.reconnects:
                    print(f"   the change stream was cut {stream.reconnects} time(s) and resumed")
    return results
