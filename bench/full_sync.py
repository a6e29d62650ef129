"""Full sync of a tenant at a scaled Graph quota, through the whole stack.

How close the extender gets to the physical limit (the tenant's quota) while
losing nothing: achieved resource units per second divided by the quota's
rate, the 429s Graph had to send, and profiles lost.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.results import Result
from services.devstack.lob_client import LobClient, emulator_http
from services.devstack.stack import Stack, StackOptions

__all__ = ["run"]


def run(quick: bool) -> list[Result]:
    users, quota = (1_000, 2_000) if quick else (10_000, 5_000)
    workload = f"{users:,} users, quota {quota:,} RU/10 s"
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as state:
        options = StackOptions(
            state_dir=Path(state),
            users=users,
            env={"GRAPH_QUOTA_PER_10S": str(quota), "LOG_LEVEL": "WARNING"},
            with_gateway=True,
        )
        with Stack(options) as stack, emulator_http(stack.emulator_url, stack.ca_file) as admin:
            admin.put("/_emulator/config", json={"quotaPer10s": quota}).raise_for_status()
            admin.delete("/_emulator/stats").raise_for_status()
            lob = LobClient.on_stack(stack)
            started = time.perf_counter()
            sync = lob.sync_and_wait(timeout=1800)
            seconds = time.perf_counter() - started
            stats = admin.get("/_emulator/stats").json()
            lob.close()
    counts = sync.get("counts", {})
    created = int(counts.get("created", 0))
    stages = {t["stage"]: float(t["seconds"]) for t in sync.get("timings", [])}
    # The quota limits the fetch stage only: the rate is taken over it. The other stages
    # (compare, publish, commit, which files every profile in the search index on a
    # first sync) are in the wall time.
    fetch_seconds = stages.get("fetch", seconds)
    achieved = stats["resourceUnits"] / fetch_seconds
    limit = quota / 10
    return [
        Result(
            "full sync: wall time",
            f"{workload}; baseline: the RUs it used, spent at the quota rate; "
            + ", ".join(f"{stage} {value:.1f} s" for stage, value in stages.items()),
            round(seconds, 2),
            "s",
            baseline=round(stats["resourceUnits"] / limit, 2),
        ),
        Result(
            "full sync: Graph rate / quota rate",
            f"{workload}; {stats['resourceUnits']:,} RU over the fetch stage "
            f"({fetch_seconds:.1f} s; peak {stats['peakResourceUnitsPer10s']:,} RU in 10 s)",
            round(achieved, 1),
            "RU/s",
            baseline=limit,
            goal=">= 0.9 of the quota rate",
            met=achieved / limit >= 0.9,
        ),
        Result(
            "full sync: 429s from Graph",
            workload,
            stats["throttled"],
            "responses",
            goal="0",
            met=stats["throttled"] == 0,
        ),
        Result(
            "full sync: profiles lost",
            workload,
            users - created,
            "profiles",
            goal="0",
            met=created == users and sync["state"] == "SUCCEEDED",
            required=True,
        ),
    ]
