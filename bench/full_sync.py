"""Full sync at 10,000 and 100,000 users, as a user runs it: the whole stack,
default settings, the L-tier quota and Graph as slow as a real tenant's.

    python -m bench --only full_sync [--quick]

For each tenant size, a fresh stack runs a first sync (every profile
created) and then a resync (a few profiles edited in Delve in between).
Each sync is timed from `POST /v1/syncs` to the end its run record gives.

- quota use: the resource units Graph charged ÷ (the quota's rate x that
  wall time). 1.0 is the physical limit; goals ≥ 0.85 for a first sync and
  ≥ 0.9 for a resync.
- 429s Graph sent, and profiles lost (a user not accounted for, or an edit
  not found): both goal 0.
- Graph's last answer to the run's end: the emulator logs every answer it
  sends (its access log, written once the response is out); the newest
  Graph answer's time against the run record's end time. Goal ≤ 2 s: no
  work after the reads that grows with the tenant.
- Redis peak memory during the run against Redis at rest with the committed
  baseline (`used_memory` after `MEMORY PURGE`: after a first sync, the
  state it committed; before a resync, the state it starts from). The peak
  is `used_memory` sampled every 50 ms, or Redis' own `used_memory_peak`
  when the run set a new one. Goal ≤ 1.3x.
- each stage's cost per profile (the run record's stage timings ÷ users)
  at the larger tenant against the smaller one. Goal ≤ 1.2x: nothing grows
  faster than the tenant.

The same rows again on a local Redis Cluster of three primaries (cluster
mode enabled, as ElastiCache Serverless is), beside the single node's as
their baseline, so the cost of cluster mode is known: at the smaller tenant
(with --quick, at its smaller tenant only). Redis memory there is the sum
over the primaries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.graph_latency import L_TIER_QUOTA, LatencyModel, realistic_latency
from bench.graph_users import graph_users
from bench.results import Result
from devtools.devstack.lob_client import LobClient, edit_in_delve, emulator_http
from devtools.devstack.redis_cluster import start_redis_cluster
from devtools.devstack.stack import Stack, StackOptions

__all__ = ["run"]

FIRST_SYNC_GOAL = 0.85
RESYNC_GOAL = 0.9
AFTER_LAST_READ_GOAL_SECONDS = 2.0
REDIS_PEAK_GOAL = 1.3
STAGE_GROWTH_GOAL = 1.2
# Stages a sync's run record times, in the order a run meets them.
STAGES = ("fetch", "compare", "snapshot", "publish", "index", "commit")
# One resync edit per this many users (at least one).
EDIT_EVERY = 1_000
# What the cluster rows say about where they ran.
ON_CLUSTER = "on a 3-primary Redis Cluster"
# The cluster rows need every search index key in one hash slot (the differ
# files for search as it syncs); set once services/search/redis_keys.py has a hash tag.
CLUSTER_ROWS = True


def parse_time(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (a run record's or a log line's)."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def quota_use(resource_units: int, quota_per_10s: int, seconds: float) -> float:
    """Share of what the quota allowed over `seconds` that was spent."""
    return resource_units / (quota_per_10s / 10 * seconds)


def last_graph_answer(log_text: str) -> float | None:
    """When the emulator sent its newest Graph answer (its access log's lines for /v1.0/)."""
    newest = None
    for line in log_text.splitlines():
        if '"graph_emulator.access"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if str(entry.get("path", "")).startswith("/v1.0/"):
            at = parse_time(str(entry["ts"]))
            newest = at if newest is None or at > newest else newest
    return newest


def redis_at_rest(nodes: list[redis.Redis]) -> int:
    """Bytes Redis uses (over every primary of a cluster) once its allocator
    has returned what it can."""
    for node in nodes:
        node.memory_purge()
    return _used(nodes, "used_memory")


def _used(nodes: list[redis.Redis], field: str) -> int:
    return sum(int(node.info("memory")[field]) for node in nodes)


class RedisPeak:
    """Redis' peak `used_memory` while the block runs: sampled on a thread, or Redis'
    own `used_memory_peak` when the block set a new one (it never goes down).
    On a cluster, the sums over the primaries."""

    def __init__(self, nodes: list[redis.Redis], every: float = 0.05) -> None:
        self._nodes = nodes
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="redis-peak", daemon=True)
        self._sampled = 0
        self._peak_before = 0
        self.peak = 0

    def __enter__(self) -> RedisPeak:
        self._peak_before = _used(self._nodes, "used_memory_peak")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        peak_after = _used(self._nodes, "used_memory_peak")
        self.peak = max(self._sampled, peak_after if peak_after > self._peak_before else 0)

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            self._sampled = max(self._sampled, _used(self._nodes, "used_memory"))


@dataclass(frozen=True)
class Sync:
    kind: str  # "first sync" or "resync"
    users: int
    edits: int
    seconds: float  # POST /v1/syncs to the run record's end
    after_last_answer: float
    run: dict[str, Any]
    stats: dict[str, Any]
    redis_peak: int
    redis_committed: int

    @property
    def stages(self) -> dict[str, float]:
        return {t["stage"]: float(t["seconds"]) for t in self.run.get("timings", [])}

    @property
    def lost(self) -> int:
        """Users not accounted for, and edits the resync did not find."""
        counts = {k: int(v) for k, v in self.run.get("counts", {}).items() if k != "users"}
        seen = counts.get("created", 0) + counts.get("updated", 0) + counts.get("unchanged", 0)
        missed_edits = max(0, self.edits - counts.get("updated", 0))
        return max(0, self.users - seen) + missed_edits + counts.get("deleted", 0)


def _sync(
    stack: Stack, lob: LobClient, memory: list[redis.Redis], kind: str, users: int, edits: int
) -> Sync:
    log_path = stack.processes["emulator"].log_path
    with emulator_http(stack.emulator_url, stack.ca_file) as admin:
        admin.delete("/_emulator/stats").raise_for_status()
        before = redis_at_rest(memory)
        log_offset = log_path.stat().st_size
        with RedisPeak(memory) as peak:
            posted = time.time()
            response = lob.http.post("/v1/syncs", json={})
            response.raise_for_status()
            record = lob.wait_for_run(response.json(), timeout=3600)
        stats = admin.get("/_emulator/stats").json()
    ended = parse_time(record["endTime"])
    with log_path.open("rb") as log:
        log.seek(log_offset)
        answered = last_graph_answer(log.read().decode(errors="replace"))
    if answered is None:
        raise RuntimeError(f"the emulator's log ({log_path}) has no Graph answer for the {kind}")
    after = redis_at_rest(memory)
    return Sync(
        kind=kind,
        users=users,
        edits=edits,
        seconds=ended - posted,
        after_last_answer=ended - answered,
        run=record,
        stats=stats,
        redis_peak=peak.peak,
        redis_committed=after if kind == "first sync" else before,
    )


def _tenant(users: int, *, cluster: bool = False) -> tuple[list[Sync], LatencyModel]:
    """A fresh stack: a first sync, a few edits in Delve, a resync; on a
    fresh local Redis Cluster when `cluster`."""
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as state:
        if not cluster:
            return _tenant_on(users, Path(state), None, [])
        local = start_redis_cluster(Path(state) / "redis-cluster")
        try:
            primaries = [f"redis://127.0.0.1:{port}/0" for port in local.ports]
            return _tenant_on(users, Path(state), local.url, primaries)
        finally:
            local.stop()


def _tenant_on(
    users: int, state: Path, redis_url: str | None, primaries: list[str]
) -> tuple[list[Sync], LatencyModel]:
    edits = max(1, users // EDIT_EVERY)
    options = StackOptions(
        state_dir=state / "stack", users=users, log_level="WARNING", redis_url=redis_url
    )
    with (
        Stack(options) as stack,
        emulator_http(stack.emulator_url, stack.ca_file) as admin,
        LobClient.on_stack(stack) as lob,
    ):
        model = realistic_latency(admin)
        # Spread over the first page of users: different $batch groups.
        sample = graph_users(stack.emulator_url, stack.ca_file, min(users, 999))
        chosen = sample[:: max(1, len(sample) // edits)][:edits]
        memory = [redis.Redis.from_url(url) for url in primaries or [stack.redis_url]]
        try:
            first = _sync(stack, lob, memory, "first sync", users, 0)
            for number, user in enumerate(chosen):
                about = f"Edited in Delve before the resync ({number})"
                edit_in_delve(stack.emulator_url, stack.ca_file, user["id"], aboutMe=about)
            again = _sync(stack, lob, memory, "resync", users, len(chosen))
        finally:
            for node in memory:
                node.close()
    return [first, again], model


def _sync_rows(sync: Sync, model: LatencyModel, where: str = "") -> list[Result]:
    workload = (
        f"{sync.users:,} users, L-tier quota {L_TIER_QUOTA:,} RU/10 s, {model.describe()}, "
        "default settings; "
        + (
            "first sync: every profile created"
            if sync.kind == "first sync"
            else f"resync: {sync.edits:,} profile(s) edited in Delve before it"
        )
    )
    name = f"full sync {sync.users:,} users{' ' + where if where else ''}, {sync.kind}"
    units = int(sync.stats["resourceUnits"])
    use = quota_use(units, L_TIER_QUOTA, sync.seconds)
    goal = FIRST_SYNC_GOAL if sync.kind == "first sync" else RESYNC_GOAL
    floor = units / (L_TIER_QUOTA / 10)
    stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in sync.stages.items())
    rows = [
        Result(
            f"{name}: quota use",
            f"{workload}; {units:,} RU over {sync.seconds:.1f} s from POST /v1/syncs to the "
            f"run's end (at the quota's rate: {floor:.1f} s; peak "
            f"{sync.stats['peakResourceUnitsPer10s']:,} RU in 10 s); stages: {stages}",
            round(use, 3),
            "of the quota",
            goal=f">= {goal}",
            met=use >= goal,
        ),
        Result(
            f"{name}: 429s from Graph",
            workload,
            int(sync.stats["throttled"]),
            "responses",
            goal="0",
            met=sync.stats["throttled"] == 0,
        ),
        Result(
            f"{name}: profiles lost",
            f"{workload}; run ended {sync.run['state']}",
            sync.lost,
            "profiles",
            goal="0",
            met=sync.lost == 0 and sync.run["state"] == "SUCCEEDED",
            required=True,
        ),
    ]
    rows.append(
        Result(
            f"{name}: Graph's last answer to the run's end",
            f"{workload}; the emulator's access log against the run record's end time",
            round(sync.after_last_answer, 2),
            "s",
            goal=f"<= {AFTER_LAST_READ_GOAL_SECONDS:g} s",
            met=sync.after_last_answer <= AFTER_LAST_READ_GOAL_SECONDS,
        )
    )
    ratio = sync.redis_peak / sync.redis_committed
    rows.append(
        Result(
            f"{name}: Redis peak memory",
            f"{workload}; baseline: Redis at rest with the committed baseline "
            + ("(after the run)" if sync.kind == "first sync" else "(before the run)"),
            round(sync.redis_peak / 2**20, 1),
            "MiB",
            baseline=round(sync.redis_committed / 2**20, 1),
            goal=f"<= {REDIS_PEAK_GOAL}x the baseline",
            met=ratio <= REDIS_PEAK_GOAL,
        )
    )
    return rows


def _stage_rows(small: Sync, large: Sync) -> list[Result]:
    """Each stage's cost per profile at the larger tenant against the smaller."""
    rows = []
    for stage in STAGES:
        if stage not in large.stages:
            continue
        per_profile = large.stages[stage] / large.users * 1e6
        baseline = small.stages.get(stage, 0.0) / small.users * 1e6
        growth = per_profile / baseline if baseline else None
        rows.append(
            Result(
                f"full sync {large.users:,} users, {large.kind}: {stage} per profile",
                f"{large.users:,} users; baseline: {small.users:,} users; the run records' "
                "stage timings ÷ users",
                round(per_profile, 1),
                "µs",
                baseline=round(baseline, 1),
                goal=f"<= {STAGE_GROWTH_GOAL}x the baseline",
                met=growth is not None and growth <= STAGE_GROWTH_GOAL,
            )
        )
    return rows


def cluster_rows(single: list[Sync], users: int) -> list[Result]:
    """The full-sync rows of a tenant of `users` on a local Redis Cluster, each
    beside the single node's figure (`single`, the same tenant's syncs) as
    its baseline."""
    syncs, model = _tenant(users, cluster=True)
    results: list[Result] = []
    for on_cluster, on_node in zip(syncs, single, strict=True):
        node_rows = {r.name: r for r in _sync_rows(on_node, model)}
        for row in _sync_rows(on_cluster, model, ON_CLUSTER):
            beside = node_rows[row.name.replace(f" {ON_CLUSTER}", "")]
            results.append(dataclasses.replace(row, baseline=row.baseline or beside.value))
    return results


def run(quick: bool) -> list[Result]:
    sizes = (1_000, 2_000) if quick else (10_000, 100_000)
    tenants = [_tenant(users) for users in sizes]
    results: list[Result] = []
    for syncs, model in tenants:
        for sync in syncs:
            results += _sync_rows(sync, model)
    (small, _), (large, _) = tenants
    for kind in (0, 1):
        results += _stage_rows(small[kind], large[kind])
    if CLUSTER_ROWS:
        results += cluster_rows(small, sizes[0])
    return results
