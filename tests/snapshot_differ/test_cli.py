"""`python -m services.snapshot_differ run | approve-deletes` as the CronJob
and an operator use it: exit codes, JSON logs, the progress bar on a
terminal, dry runs, and a killed run's lock expiring."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
import time
from typing import Any

from differ_process import ROOT, differ_env, run_differ
from harness import DifferHarness, make_profile

from services.snapshot_differ.lock import lock_key


async def test_a_run_logs_json_and_exits_0_then_5_when_held_then_approved(
    harness: DifferHarness, authority: dict[str, Any]
) -> None:
    profiles = [make_profile(i) for i in range(10)]
    harness.set_profiles(profiles)
    env = differ_env(harness, authority)
    first = await run_differ(env, "run")
    assert first.returncode == 0, first.stderr
    assert first.run["state"] == "SUCCEEDED" and first.run["counts"]["created"] == "10"
    assert first.logs and all(line["service"] == "snapshot_differ" for line in first.logs)
    [ended] = [line for line in first.logs if line["message"].startswith("sync run")]
    assert ended["runId"] == first.run["runId"] and ended["peakRssBytes"] > 0
    assert "\r" not in first.stderr  # no progress bar without a terminal

    harness.set_profiles(profiles[:6])
    dry = await run_differ(env, "run", "--dry-run")
    assert dry.returncode == 5 and dry.run["dryRun"] is True
    held = await run_differ(env, "run")
    assert held.returncode == 5, held.stderr
    assert held.run["state"] == "HELD_FOR_DELETES" and held.run["counts"]["heldDeletes"] == "4"
    run_id = held.run["runId"]
    assert f"approve-deletes {run_id}" in held.run["error"]

    refused = await run_differ(env, "approve-deletes", dry.run["runId"])
    assert refused.returncode == 1 and "was a dry run" in refused.stderr
    approved = await run_differ(env, "approve-deletes", run_id)
    assert approved.returncode == 0, approved.stderr
    assert approved.run["state"] == "SUCCEEDED" and approved.run["counts"]["deleted"] == "4"
    assert len(await harness.new_events()) == 14


async def test_partial_already_running_and_configuration_errors_have_their_codes(
    harness: DifferHarness, authority: dict[str, Any]
) -> None:
    profiles = [make_profile(i) for i in range(4)]
    harness.set_profiles(profiles)
    harness.extender.failing = {profiles[1]["id"]}
    env = differ_env(harness, authority)
    partial = await run_differ(env, "run")
    assert partial.returncode == 3 and partial.run["state"] == "PARTIAL"

    await harness.redis.set(lock_key("s0of1"), "20260101T000000000Z-other", px=60_000)
    busy = await run_differ(env, "run")
    assert busy.returncode == 4
    assert "already running: run 20260101T000000000Z-other" in busy.stderr

    for name, value in [
        ("DELETE_THRESHOLD_PERCENT", "150"),
        ("SYNC_MODE", "cloud"),
        ("SNAPSHOT_STORE", "s3://"),
        ("REDIS_CLUSTER", "maybe"),
        ("HOT_SHARE", "1.5"),
        ("HOT_REREAD_SECONDS", "900"),  # longer than HOT_QUIET_SECONDS
    ]:
        bad = await run_differ({**env, name: value}, "run")
        assert bad.returncode == 2 and name.split("_")[0] in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    cluster = {**env, "SYNC_MODE": "kubernetes", "POD_NAMESPACE": "x"}
    bad = await run_differ(cluster, "run")
    assert bad.returncode == 2 and "CRONJOB_NAME is required" in bad.stderr


async def test_a_terminal_gets_a_progress_bar_and_a_summary(
    harness: DifferHarness, authority: dict[str, Any]
) -> None:
    harness.set_profiles([make_profile(i) for i in range(30)])
    controller, terminal = pty.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.snapshot_differ",
            "run",
            env={**differ_env(harness, authority), "COLUMNS": "100"},
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        terminal = -1
        stdout, _ = await asyncio.wait_for(process.communicate(), 180)
        screen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0
    text = screen.decode()
    assert "[####" in text and "30/30" in text
    assert "SUCCEEDED — 30 read, 30 created, 0 updated, 0 deleted" in text
    # stdout holds only the run itself: no JSON log lines for a person to wade through.
    [line] = stdout.decode().splitlines()
    assert json.loads(line)["state"] == "SUCCEEDED"


async def test_a_killed_runs_lock_expires_and_the_next_run_goes_ahead(
    harness: DifferHarness, authority: dict[str, Any]
) -> None:
    harness.set_profiles([make_profile(i) for i in range(12)])
    env = differ_env(harness, authority, SYNC_LOCK_TTL_SECONDS="5")
    killed = await run_differ({**env, "DIFFER_CRASH_AT": "compared:1"}, "run")
    assert killed.returncode == -9
    blocked = await run_differ(env, "run")
    assert blocked.returncode == 4
    deadline = time.monotonic() + 60
    while True:
        rerun = await run_differ(env, "run")
        if rerun.returncode != 4 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.run["counts"]["created"] == "12"
    states = {run.run_id: run.state for run in await harness.runner.records.newest(5)}
    assert len(states) == 2  # the killed run, closed as interrupted, and the rerun
