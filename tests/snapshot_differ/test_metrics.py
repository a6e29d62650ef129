"""Sync outcomes on the differ server's /metrics, read from the run records: runs made by
`run` processes (the CronJob) show up, each run counts once, held runs are visible, and a
scrape while Redis is down still answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from differ_process import ROOT, differ_env, run_differ
from harness import DifferHarness, make_profile
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import ManagedProcess, free_port, python_module
from profilesync.v1 import differ_pb2
from services.snapshot_differ.lock import lock_key
from services.snapshot_differ.metrics import SyncRunsCollector
from services.snapshot_differ.run_records import RunRecords, shard_label

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def timestamp(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# -- the server process ----------------------------------------------------------------------


async def start_server(env: dict[str, str], workdir: pathlib.Path) -> ManagedProcess:
    ready = workdir / "differ-server.ready.json"
    process = ManagedProcess(
        "differ-server",
        python_module("services.snapshot_differ", "serve"),
        log_dir=workdir,
        env={**env, "GRPC_PORT": "0", "METRICS_PORT": "0", "READY_FILE": str(ready)},
        ready_file=ready,
        cwd=ROOT,
    ).start()
    try:
        await asyncio.to_thread(process.wait_ready, 60)
    except BaseException:
        process.stop()
        raise
    return process


async def scrape(process: ManagedProcess) -> Samples:
    url = f"http://127.0.0.1:{process.ready['metricsPort']}/metrics"
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        response = await client.get(url)
    response.raise_for_status()
    return samples(response.text)


@pytest.fixture
async def server(
    harness: DifferHarness, authority: dict[str, Any], tmp_path: pathlib.Path
) -> AsyncIterator[ManagedProcess]:
    process = await start_server(differ_env(harness, authority), tmp_path)
    try:
        yield process
    finally:
        process.stop()


async def test_runs_of_cronjob_processes_show_on_the_server_until_approved(
    harness: DifferHarness, authority: dict[str, Any], server: ManagedProcess
) -> None:
    before = await scrape(server)
    assert value(before, "profilesync_sync_records_up") == 1
    assert value(before, "profilesync_sync_runs_total", state="SUCCEEDED") == 0
    assert value(before, "profilesync_sync_last_success_timestamp_seconds") is None

    profiles = [make_profile(i) for i in range(12)]
    harness.set_profiles(profiles)
    # Two listed users have no SharePoint profile: counted apart, the run still succeeds.
    harness.extender.without_profile = {
        profiles[10]["id"]: "no SharePoint Online licence",
        profiles[11]["id"]: "no personal site provisioned",
    }
    env = differ_env(harness, authority)
    first = await run_differ(env, "run")
    assert first.returncode == 0, first.stderr
    after = await scrape(server)
    assert value(after, "profilesync_sync_last_run_users", kind="listed") == 12
    assert value(after, "profilesync_sync_last_run_users", kind="profiles") == 10
    assert value(after, "profilesync_sync_last_run_users", kind="failed") == 0
    assert value(after, "profilesync_sync_last_run_users", kind="without_profile") == 2
    assert value(after, "profilesync_sync_runs_total", state="SUCCEEDED") == 1
    assert value(after, "profilesync_sync_runs_total", state="FAILED") == 0
    ended = timestamp(first.run["endTime"])
    last_success = value(after, "profilesync_sync_last_success_timestamp_seconds")
    assert last_success == pytest.approx(ended, abs=0.001)
    assert value(after, "profilesync_sync_last_run_state", state="SUCCEEDED") == 1
    assert value(after, "profilesync_sync_last_run_changes", kind="created") == 10
    assert value(after, "profilesync_sync_held_runs") == 0
    assert value(after, "profilesync_sync_running") == 0
    stages = {t["stage"]: t["seconds"] for t in first.run["timings"]}
    for stage, seconds in stages.items():
        exported = value(after, "profilesync_sync_last_run_stage_duration_seconds", stage=stage)
        assert exported == pytest.approx(seconds)
    duration = value(after, "profilesync_sync_last_run_duration_seconds")
    assert duration == pytest.approx(ended - timestamp(first.run["startTime"]), abs=0.001)

    # Scraping again counts nothing twice.
    again = await scrape(server)
    assert value(again, "profilesync_sync_runs_total", state="SUCCEEDED") == 1

    harness.set_profiles(profiles[:6])
    harness.extender.without_profile = {}
    held = await run_differ(env, "run")
    assert held.returncode == 5, held.stderr
    waiting = await scrape(server)
    assert value(waiting, "profilesync_sync_held_runs") == 1
    # Held is not an outcome yet, and the tenant's last success is still the first run.
    assert value(waiting, "profilesync_sync_runs_total", state="SUCCEEDED") == 1
    assert value(waiting, "profilesync_sync_last_success_timestamp_seconds") == last_success

    approved = await run_differ(env, "approve-deletes", held.run["runId"])
    assert approved.returncode == 0, approved.stderr
    done = await scrape(server)
    assert value(done, "profilesync_sync_held_runs") == 0
    assert value(done, "profilesync_sync_runs_total", state="SUCCEEDED") == 2
    assert value(done, "profilesync_sync_last_run_changes", kind="deleted") == 4
    assert value(done, "profilesync_sync_last_success_timestamp_seconds") == pytest.approx(
        timestamp(approved.run["endTime"]), abs=0.001
    )


async def test_a_scrape_while_redis_is_down_answers_with_records_down(
    harness: DifferHarness, authority: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    process = await start_server({**differ_env(harness, authority), "REDIS_URL": nobody}, tmp_path)
    try:
        for _ in range(2):
            found = await scrape(process)
            assert value(found, "profilesync_sync_records_up") == 0
            assert value(found, "profilesync_sync_last_success_timestamp_seconds") is None
            # The counters stay, at zero: nothing was seen to end.
            assert value(found, "profilesync_sync_runs_total", state="SUCCEEDED") == 0
        assert process.alive()
    finally:
        process.stop()
    log = process.log_path.read_text()
    assert log.count("cannot read the sync run records for metrics") == 1, log


# -- the collector in this process, over records written here --------------------------------


def run_record(
    run_id: str,
    state: int,
    *,
    minutes_ago: float,
    shard: tuple[int, int] = (0, 1),
    dry_run: bool = False,
) -> differ_pb2.SyncRun:
    run = differ_pb2.SyncRun(
        run_id=run_id, state=state, shard_index=shard[0], shard_count=shard[1], dry_run=dry_run
    )
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    run.start_time.FromDatetime(end - dt.timedelta(minutes=2))
    if state != differ_pb2.RUNNING:
        run.end_time.FromDatetime(end)
    return run


@pytest.fixture
async def exported(redis_client: aioredis.Redis) -> AsyncIterator[Any]:
    """`await exported()`: what a scrape of a collector made now shows."""
    registry = CollectorRegistry()
    collector = SyncRunsCollector(RunRecords(redis_client), asyncio.get_running_loop())
    registry.register(collector)

    async def scrape_now() -> Samples:
        # The client scrapes from its own threads, never on the event loop.
        return samples((await asyncio.to_thread(generate_latest, registry)).decode())

    yield scrape_now


async def test_runs_that_ended_before_the_server_started_are_not_counted(
    redis_client: aioredis.Redis, exported: Any
) -> None:
    records = RunRecords(redis_client)
    await records.save(run_record("r1", differ_pb2.SUCCEEDED, minutes_ago=30))
    found = await exported()
    assert value(found, "profilesync_sync_runs_total", state="SUCCEEDED") == 0
    # ... but they are the last success and the last run.
    assert value(found, "profilesync_sync_last_success_timestamp_seconds") is not None
    assert value(found, "profilesync_sync_last_run_state", state="SUCCEEDED") == 1

    await records.save(run_record("r2", differ_pb2.PARTIAL, minutes_ago=0))
    await records.save(run_record("r3", differ_pb2.FAILED, minutes_ago=0, dry_run=True))
    found = await exported()
    assert value(found, "profilesync_sync_runs_total", state="PARTIAL") == 1
    assert value(found, "profilesync_sync_runs_total", state="FAILED") == 0  # a dry run
    assert value(found, "profilesync_sync_last_run_state", state="PARTIAL") == 1


async def test_the_last_success_waits_for_every_shard(
    redis_client: aioredis.Redis, exported: Any
) -> None:
    records = RunRecords(redis_client)
    await records.save(run_record("a0", differ_pb2.SUCCEEDED, minutes_ago=40, shard=(0, 2)))
    await records.save(run_record("b1", differ_pb2.FAILED, minutes_ago=20, shard=(1, 2)))
    found = await exported()
    assert value(found, "profilesync_sync_last_success_timestamp_seconds") is None

    await records.save(run_record("c1", differ_pb2.SUCCEEDED, minutes_ago=10, shard=(1, 2)))
    await records.save(run_record("d0", differ_pb2.SUCCEEDED, minutes_ago=5, shard=(0, 2)))
    found = await exported()
    oldest_of_newest = (await records.get("c1")).end_time.ToNanoseconds() / 1e9
    last_success = value(found, "profilesync_sync_last_success_timestamp_seconds")
    assert last_success == pytest.approx(oldest_of_newest)


async def test_running_and_interrupted_runs(redis_client: aioredis.Redis, exported: Any) -> None:
    records = RunRecords(redis_client)
    await records.save(run_record("live", differ_pb2.RUNNING, minutes_ago=0, shard=(0, 2)))
    await redis_client.set(lock_key(shard_label(0, 2)), "live", px=60_000)
    # Its process died: no lock, so the record reads as failed (not yet counted: no end).
    await records.save(run_record("dead", differ_pb2.RUNNING, minutes_ago=0, shard=(1, 2)))
    found = await exported()
    assert value(found, "profilesync_sync_running") == 1
    assert value(found, "profilesync_sync_runs_total", state="FAILED") == 0
