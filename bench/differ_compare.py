"""Snapshot differ: what a run costs against a plain differ, and a run's peak memory.

    python -m bench --only differ_compare [--quick]

Both differs run as processes of their own against the same extender (on
loopback, streaming N generated profiles of ~1 KB) and the same notifier
(accepting everything), as a run really goes: first every user new, then
runs alternating between two versions of the tenant with 1% of the profiles
changed.

1. Own time per run. `python -m services.snapshot_differ run` (baseline in
   Redis, snapshot written, events published, run committed) against
   bench/plain_differ.py, what a competent engineer would write first: an
   id -> digest map of the previous snapshot loaded in process, the new
   profiles streamed against it, the same snapshot written, the same events
   published, the new snapshot named the latest. Each is timed from its
   start to its commit, less the time it waited for the extender (ours: the
   run record's start to end less its fetch stage). Best of the changed runs.
2. Peak memory: the differ process's RSS high-water mark (getrusage
   ru_maxrss, logged as `peakRssBytes`) at two tenant sizes. Goal: the larger
   tenant under 1.5 times the smaller.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from bench.full_sync import parse_time
from bench.results import Result
from devtools.devstack.emulator import emulator_process
from devtools.devstack.redis_server import start_redis
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from devtools.local_grpc import start_server
from devtools.processes import ManagedProcess
from profilesync.v1 import (
    extender_pb2,
    extender_pb2_grpc,
    notifier_pb2,
    notifier_pb2_grpc,
)
from services.lob_notifier.servicer import binding as notifier_binding
from services.profile_extender.convert import profile_from_graph
from services.profile_extender.servicer import binding as extender_binding

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHANGED_EVERY = 100  # 1% of the profiles change between the two versions
SKILLS = ("Python", "Go", "Kubernetes", "SharePoint", "Azure", "Rust", "SQL", "React")


def bench_profile(index: int, version: int = 1) -> dict[str, Any]:
    """A realistic profile (~1 KB of JSON); `version` 2 changes 1% of them."""
    about = f"Engineer {index} working on line-of-business integrations. " * 3
    if version == 2 and index % CHANGED_EVERY == 0:
        about = f"Moved to the platform team in release {index}."
    return {
        "id": f"{index:08d}-0000-4000-8000-{index:012d}",
        "userPrincipalName": f"user{index}@contoso.onmicrosoft.com",
        "displayName": f"User {index}",
        "mail": f"user{index}@contoso.onmicrosoft.com",
        "jobTitle": "Software Engineer",
        "department": f"Department {index % 40}",
        "aboutMe": about,
        "skills": [SKILLS[(index + k) % len(SKILLS)] for k in range(4)],
        "pastProjects": [f"Project {index % 97}", f"Project {index % 89}"],
        "schools": [f"University {index % 13}"],
        "interests": ["Chess", f"Hobby {index % 17}"],
    }


# -- the extender and notifier both differs talk to ------------------------------
class _Extender(extender_pb2_grpc.ProfileExtenderServicer):
    def __init__(self) -> None:
        self.users = 0
        self.version = 1

    async def ListProfiles(
        self, request: extender_pb2.ListProfilesRequest, context: Any
    ) -> AsyncIterator[extender_pb2.ListProfilesItem]:
        fetched = dt.datetime.now(dt.UTC)
        for index in range(self.users):
            profile = profile_from_graph(bench_profile(index, self.version), fetched)
            yield extender_pb2.ListProfilesItem(profile=profile)
        yield extender_pb2.ListProfilesItem(
            summary=extender_pb2.ListProfilesSummary(users=self.users, profiles=self.users)
        )


class _Notifier(notifier_pb2_grpc.LobNotifierServicer):
    async def Publish(
        self, request: notifier_pb2.PublishRequest, context: Any
    ) -> notifier_pb2.PublishResponse:
        return notifier_pb2.PublishResponse(accepted=len(request.events))


class _Servers:
    """The extender and notifier on loopback, on an event loop of their own
    (so the bench can wait for the differ process in plain blocking calls)."""

    def __init__(self) -> None:
        self.extender = _Extender()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> _Servers:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    async def _start(self) -> int:
        self.server, port = await start_server(
            extender_binding(self.extender), notifier_binding(_Notifier()), log_level="WARNING"
        )
        return port

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


def _start_authority(workdir: pathlib.Path) -> ManagedProcess:
    return emulator_process(
        workdir, users=1, state_dir=workdir / "authority", name="authority"
    ).start()


@dataclass(frozen=True)
class Measured:
    own_seconds: float  # start to commit, less waiting for the extender
    counts: dict[str, int]
    peak_rss_bytes: int = 0


def _ours(env: dict[str, str]) -> Measured:
    """One `python -m services.snapshot_differ run`: its run record and peak RSS."""
    result = subprocess.run(
        [sys.executable, "-m", "services.snapshot_differ", "run", "--no-progress"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"differ run exited {result.returncode}:\n{result.stderr[-2000:]}")
    entries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    ended = next(e for e in entries if "peakRssBytes" in e)
    record = next(e for e in entries if "runId" in e and "startTime" in e)
    if record["state"] != "SUCCEEDED":
        raise RuntimeError(f"differ run ended {record['state']}: {record.get('error')}")
    stages = {t["stage"]: float(t["seconds"]) for t in record.get("timings", [])}
    wall = parse_time(record["endTime"]) - parse_time(record["startTime"])
    return Measured(
        wall - stages.get("fetch", 0.0),
        {k: int(v) for k, v in record.get("counts", {}).items()},
        int(ended["peakRssBytes"]),
    )


def _plain(store: pathlib.Path, port: int) -> Measured:
    """One run of bench/plain_differ.py against the same extender and notifier."""
    address = f"127.0.0.1:{port}"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "bench.plain_differ", "--store", str(store)),
            *("--extender", address, "--notifier", address),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"plain differ exited {result.returncode}:\n{result.stderr[-2000:]}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    return Measured(outcome["seconds"] - outcome["waited"], outcome["counts"])


def _check(measured: Measured, n: int, first: bool, who: str) -> None:
    """Both differs must find exactly the changes there are: else the suite is broken."""
    changed = len(range(0, n, CHANGED_EVERY))
    expected = {"created": n, "updated": 0} if first else {"created": 0, "updated": changed}
    found = {k: measured.counts.get(k, 0) for k in expected}
    if found != expected or measured.counts.get("deleted", 0):
        raise AssertionError(f"{who} found {measured.counts}, expected {expected}")


def _runs(
    redis_url: str, workdir: pathlib.Path, sizes: tuple[int, int], rounds: int
) -> dict[tuple[int, str, str], list[Measured]]:
    """(size, "ours" or "plain", "first run" or "1% changed") -> the runs measured."""
    import redis as sync_redis

    authority = _start_authority(workdir)
    runs: dict[tuple[int, str, str], list[Measured]] = {}
    try:
        info = authority.wait_ready(timeout=120)
        with _Servers() as servers:
            for n in sizes:
                sync_redis.Redis.from_url(redis_url).flushdb()
                env = {
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "AZURE_TENANT_ID": str(info["tenantId"]),
                    "AZURE_CLIENT_ID": DEFAULT_CLIENT_ID,
                    "AZURE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
                    "AZURE_AUTHORITY_HOST": str(info["url"]),
                    "AZURE_CA_BUNDLE": str(info["caFile"]),
                    "EXTENDER_ADDR": f"127.0.0.1:{servers.port}",
                    "NOTIFIER_ADDR": f"127.0.0.1:{servers.port}",
                    "REDIS_URL": redis_url,
                    "SNAPSHOT_STORE": str(workdir / f"ours-{n}"),
                    "METRICS_PORT": "-1",
                    "LOG_LEVEL": "INFO",
                }
                servers.extender.users = n
                plain_store = workdir / f"plain-{n}"
                differs: tuple[tuple[str, Callable[[], Measured]], ...] = (
                    ("ours", functools.partial(_ours, env)),
                    ("plain", functools.partial(_plain, plain_store, servers.port)),
                )
                # Alternating ours and plain, so a slow moment of this shared machine
                # does not fall on one of them only.
                for round_number in range(rounds + 1):
                    # Round 0 is every user new; then versions 2, 1, 2, ...: 1% changed.
                    servers.extender.version = 2 - round_number % 2
                    label = "first run" if round_number == 0 else "1% changed"
                    for who, differ in differs:
                        measured = differ()
                        _check(measured, n, round_number == 0, who)
                        runs.setdefault((n, who, label), []).append(measured)
    finally:
        authority.stop()
    return runs


def _rows(runs: dict[tuple[int, str, str], list[Measured]], sizes: tuple[int, int]) -> list[Result]:
    small, large = sizes
    results = []
    for label in ("first run", "1% changed"):
        ours = min(m.own_seconds for m in runs[(large, "ours", label)])
        plain = min(m.own_seconds for m in runs[(large, "plain", label)])
        count = len(runs[(large, "ours", label)])
        results.append(
            Result(
                f"differ run, {label}: own time",
                f"{large:,} profiles; start to commit less waiting for the extender, best of "
                f"{count}; baseline: an id -> digest map of the previous snapshot in process, "
                "the same snapshot, events and commit (bench/plain_differ.py)",
                round(large / ours),
                "profiles/s",
                baseline=round(large / plain),
                goal=">= 1x the baseline",
                met=ours <= plain,
            )
        )
    for label in ("first run", "1% changed"):
        peaks = {n: max(m.peak_rss_bytes for m in runs[(n, "ours", label)]) / 2**20 for n in sizes}
        results.append(
            Result(
                "differ run peak RSS", f"{small:,} profiles, {label}", round(peaks[small], 1), "MiB"
            )
        )
        results.append(
            Result(
                "differ run peak RSS",
                f"{large:,} profiles, {label} (baseline: {small:,})",
                round(peaks[large], 1),
                "MiB",
                baseline=round(peaks[small], 1),
                goal="< 1.5x the smaller tenant",
                met=peaks[large] / peaks[small] < 1.5,
            )
        )
    return results


def run(quick: bool) -> list[Result]:
    sizes = (1_000, 5_000) if quick else (10_000, 100_000)
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-differ-") as tmp:
        workdir = pathlib.Path(tmp)
        redis_process, redis_url = start_redis(workdir / "redis")
        try:
            return _rows(_runs(redis_url, workdir, sizes, rounds), sizes)
        finally:
            redis_process.stop()
