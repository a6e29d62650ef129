"""Graph emulator capacity: how many single-user GETs inside `$batch` it answers per second.

    python -m bench --only graph_emulator_capacity [--quick]

The emulator must never be what limits a benchmark below Graph's largest quota (8,000
resource units per 10 s), so the goal is at least 1,000 single-user GETs per second on one
core. It runs in its own process (one event loop, so one core at most); this process is the
client, on the other core, with HTTP/2 and several batches in flight. Besides the wall-clock
rate we report the rate per CPU-second the emulator spent, which does not depend on how fast
the client is. Comparing a small and a large tenant shows per-request work does not grow
with tenant size (and the full run times generating a 100,000-user tenant). A last run with
Graph's real quota checks the budget is never exceeded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.results import Result
from devtools.devstack.emulator import emulator_process
from devtools.processes import ManagedProcess

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOAL_PER_SECOND = 1_000
PROFILE_SELECT = (
    "id,userPrincipalName,displayName,mail,jobTitle,department,"
    "aboutMe,skills,pastProjects,schools,interests"
)
CONCURRENT_BATCHES = 8
BATCH_SIZE = 20


@dataclass(frozen=True)
class Run:
    users: int
    generation_seconds: float | None
    gets: int
    throttled: int
    seconds: float
    cpu_seconds: float | None
    peak_units: int

    @property
    def per_second(self) -> float:
        return self.gets / self.seconds

    @property
    def per_cpu_second(self) -> float | None:
        return self.gets / self.cpu_seconds if self.cpu_seconds else None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _start_emulator(workdir: pathlib.Path, users: int, quota: int) -> ManagedProcess:
    process = emulator_process(
        workdir, users=users, extra=["--quota", str(quota)], name=f"emulator-{users}"
    )
    process.start()
    process.wait_ready(timeout=180)
    return process


async def _load(ready: dict[str, Any], seconds: float, pid: int) -> Run:
    context = ssl.create_default_context(cafile=ready["caFile"])
    async with httpx.AsyncClient(
        base_url=ready["url"], verify=context, http2=True, trust_env=False, timeout=60
    ) as http:
        token = (
            await http.post(
                "/_emulator/token",
                json={"roles": ["User.Read.All"], "audience": "https://graph.microsoft.com"},
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        ids: list[str] = []
        url: str | None = "/v1.0/users?$select=id&$top=999"
        while url and len(ids) < 5_000:
            page = (await http.get(url, headers=headers)).json()
            ids.extend(user["id"] for user in page["value"])
            url = page.get("@odata.nextLink")
        await http.delete("/_emulator/stats")
        gets = throttled = 0
        cpu_before = _cpu_seconds(pid)
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(offset: int) -> None:
            nonlocal gets, throttled
            index = offset * BATCH_SIZE
            while time.perf_counter() < deadline:
                items = [
                    {
                        "id": str(n),
                        "method": "GET",
                        "url": f"/users/{ids[(index + n) % len(ids)]}?$select={PROFILE_SELECT}",
                    }
                    for n in range(BATCH_SIZE)
                ]
                index += BATCH_SIZE * CONCURRENT_BATCHES
                response = await http.post(
                    "/v1.0/$batch", json={"requests": items}, headers=headers
                )
                response.raise_for_status()
                for item in response.json()["responses"]:
                    if item["status"] == 200:
                        gets += 1
                    elif item["status"] == 429:
                        throttled += 1

        await asyncio.gather(*(worker(n) for n in range(CONCURRENT_BATCHES)))
        elapsed = time.perf_counter() - started
        cpu_after = _cpu_seconds(pid)
        stats = (await http.get("/_emulator/stats")).json()
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Run(0, None, gets, throttled, elapsed, cpu, int(stats["peakResourceUnitsPer10s"]))


def _generation_seconds(process: ManagedProcess) -> float | None:
    """How long the tenant took to generate, from the emulator's "tenant generated" log."""
    try:
        lines = process.log_path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == "tenant generated":
            return float(entry["seconds"])
    return None


def _measure(workdir: pathlib.Path, users: int, quota: int, seconds: float) -> Run:
    process = _start_emulator(workdir, users, quota)
    try:
        measured = asyncio.run(_load(process.ready, seconds, process.pid))
        return dataclasses.replace(
            measured, users=users, generation_seconds=_generation_seconds(process)
        )
    finally:
        process.stop()


def run(quick: bool) -> list[Result]:
    seconds = 3.0 if quick else 10.0
    sizes = (1_000,) if quick else (1_000, 100_000)
    unlimited = 10_000_000
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-graph-emulator-") as tmp:
        workdir = pathlib.Path(tmp)
        for users in sizes:
            measured = _measure(workdir, users, unlimited, seconds)
            workload = (
                f"{users:,} users, {CONCURRENT_BATCHES} x $batch of {BATCH_SIZE} GETs in "
                f"flight, HTTP/2, {seconds:g} s"
            )
            results.append(
                Result(
                    "graph emulator: GETs in $batch",
                    workload,
                    round(measured.per_second),
                    "GET/s",
                    goal=f">= {GOAL_PER_SECOND:,} /s",
                    met=measured.per_second >= GOAL_PER_SECOND,
                )
            )
            if measured.per_cpu_second is not None:
                results.append(
                    Result(
                        "graph emulator: GETs per CPU-second",
                        workload,
                        round(measured.per_cpu_second),
                        "GET/cpu-s",
                        goal=f">= {GOAL_PER_SECOND:,} /s on one core",
                        met=measured.per_cpu_second >= GOAL_PER_SECOND,
                    )
                )
            if users >= 100_000 and measured.generation_seconds is not None:
                results.append(
                    Result(
                        "graph emulator: tenant generation",
                        f"{users:,} users",
                        measured.generation_seconds,
                        "s",
                        goal="< 15 s",
                        met=measured.generation_seconds < 15,
                    )
                )
        # Graph's largest quota, with a client that ignores Retry-After: never exceeded.
        quota = 2_000 if quick else 8_000
        budget_seconds = 3.0 if quick else 12.0
        measured = _measure(workdir, 1_000, quota, budget_seconds)
        results.append(
            Result(
                "graph emulator: peak RU in any 10 s",
                f"quota {quota:,} RU/10 s, client ignoring Retry-After for {budget_seconds:g} s "
                f"({measured.throttled:,} items throttled)",
                measured.peak_units,
                "RU",
                goal=f"<= {quota:,}",
                met=0 < measured.peak_units <= quota,
            )
        )
    return results


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
