"""How the benchmarks turn what they observed into figures, and the measuring tools they
use: a real Redis (peak memory), the Graph emulator (latency model), a loopback HTTP
server (the load client). No whole stack is started here."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from typing import Any

import pytest
import redis

import bench.__main__ as bench_main
from bench import differ_compare, full_sync, lob_load, notifier_throughput
from bench.graph_latency import L_TIER_QUOTA, realistic_latency
from bench.http_load import Connections, HttpError
from devtools.devstack.emulator import running_emulator
from devtools.devstack.lob_client import emulator_http


def _sync(kind: str = "first sync", **overrides: Any) -> full_sync.Sync:
    fields: dict[str, Any] = {
        "kind": kind,
        "users": 10_000,
        "edits": 0 if kind == "first sync" else 10,
        "seconds": 14.0,
        "after_last_answer": 0.8,
        "run": {
            "state": "SUCCEEDED",
            "counts": {"users": "10000", "created": "10000"}
            if kind == "first sync"
            else {"users": "10000", "updated": "10", "unchanged": "9990"},
            "timings": [{"stage": "fetch", "seconds": 12.0}, {"stage": "commit", "seconds": 0.5}],
        },
        "stats": {"resourceUnits": 10_010, "throttled": 0, "peakResourceUnitsPer10s": 8_000},
        "redis_peak": 120 * 2**20,
        "redis_committed": 100 * 2**20,
    }
    fields.update(overrides)
    return full_sync.Sync(**fields)


def _row(rows: list[Any], suffix: str) -> Any:
    return next(row for row in rows if row.name.endswith(suffix))


def test_quota_use_is_taken_over_the_whole_sync_not_the_fetch_stage() -> None:
    rows = full_sync._sync_rows(_sync(), full_sync.LatencyModel(per_item=True))
    use = _row(rows, "quota use")
    # 10,010 RU over 14 s at 800 RU/s: 0.894, whatever the fetch stage took.
    assert use.value == pytest.approx(10_010 / (800 * 14.0), abs=0.001)
    assert use.met is True  # a first sync's goal is 0.85
    resync = full_sync._sync_rows(_sync("resync"), full_sync.LatencyModel(per_item=True))
    assert _row(resync, "quota use").met is False  # 0.894 is short of a resync's 0.9


def test_a_profile_not_accounted_for_or_an_edit_not_found_fails_the_bench() -> None:
    model = full_sync.LatencyModel(per_item=False)
    short = _sync(run={"state": "SUCCEEDED", "counts": {"created": "9999"}, "timings": []})
    missed = _sync("resync", run={"state": "SUCCEEDED", "counts": {"unchanged": "10000"}})
    for sync, lost in ((short, 1), (missed, 10)):
        rows = full_sync._sync_rows(sync, model)
        row = _row(rows, "profiles lost")
        assert (row.value, row.met) == (lost, False)
        assert bench_main.unmet_required(rows) == [f"{row.name}: {lost} profiles, goal 0"]
    assert "every $batch" in _row(full_sync._sync_rows(short, model), "quota use").workload


def test_redis_peak_and_the_tail_after_graph_are_judged_against_their_goals() -> None:
    rows = full_sync._sync_rows(
        _sync(after_last_answer=2.5, redis_peak=140 * 2**20), full_sync.LatencyModel(True)
    )
    assert _row(rows, "run's end").met is False
    peak = _row(rows, "Redis peak memory")
    assert (peak.value, peak.baseline, peak.met) == (140.0, 100.0, False)


def test_stage_cost_per_profile_shows_growth_with_the_tenant() -> None:
    small = _sync()
    large = _sync(
        users=100_000,
        run={
            "timings": [{"stage": "fetch", "seconds": 125.0}, {"stage": "commit", "seconds": 9.0}]
        },
    )
    rows = {row.name.split(": ")[1]: row for row in full_sync._stage_rows(small, large)}
    assert set(rows) == {"fetch per profile", "commit per profile"}
    assert rows["fetch per profile"].met is True  # 1,250 µs against 1,200 µs
    # 90 µs a profile against 50 µs: commit grows faster than the tenant.
    assert (rows["commit per profile"].value, rows["commit per profile"].baseline) == (90.0, 50.0)
    assert rows["commit per profile"].met is False


def test_graphs_last_answer_is_the_newest_graph_line_of_the_emulators_access_log() -> None:
    def line(ts: str, path: str, logger: str = "graph_emulator.access") -> str:
        return json.dumps({"ts": ts, "logger": logger, "msg": "request", "path": path})

    log = "\n".join(
        [
            line("2026-01-01T10:00:01.000+00:00", "/v1.0/$batch"),
            line("2026-01-01T10:00:03.250+00:00", "/v1.0/$batch"),
            line("2026-01-01T10:00:09.000+00:00", "/_emulator/stats"),
            line("2026-01-01T10:00:09.500+00:00", "/v1.0/users", logger="graph_emulator.server"),
            "not json",
            line("2026-01-01T10:00:02.000+00:00", "/v1.0/users"),
        ]
    )
    newest = full_sync.last_graph_answer(log)
    assert newest == full_sync.parse_time("2026-01-01T10:00:03.250Z")
    assert full_sync.last_graph_answer(line("2026-01-01T10:00:00Z", "/_emulator/config")) is None


def test_redis_peak_is_seen_while_the_block_runs(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
        rest = full_sync.redis_at_rest([client])
        with full_sync.RedisPeak([client], every=0.01) as peak:
            client.setrange("bench:peak", 4_000_000, "x")  # 4 MB made by Redis itself
            time.sleep(0.1)
            client.delete("bench:peak")
            time.sleep(0.05)
        assert peak.peak >= rest + 4_000_000
        assert full_sync.redis_at_rest([client]) < rest + 1_000_000
    finally:
        client.close()


def test_open_loop_latency_counts_the_wait_before_a_late_call_was_sent() -> None:
    one_connection = asyncio.Lock()

    async def answered_after(seconds: float) -> tuple[int, bytes]:
        async with one_connection:
            await asyncio.sleep(seconds)
            return 200, b"{}"

    async def scenario() -> lob_load.Load:
        load = lob_load.Load()
        now = time.monotonic()
        # Two calls due now on one connection, each answered 0.2 s after it is sent:
        # the second waits for the first, and that wait is in its latency.
        await asyncio.gather(
            load.call("search", lambda: answered_after(0.2), now),
            load.call("search", lambda: answered_after(0.2), now),
        )
        # Due 0.3 s ago: the generator itself was late, and says so.
        await load.call("search", lambda: answered_after(0.0), time.monotonic() - 0.3)
        return load

    load = asyncio.run(scenario())
    first, second, late = load.latencies["search"]
    assert 200 <= first < 350 and second >= 400 and late >= 300
    assert load.send_lag[0] < 100 and load.send_lag[2] >= 300
    # A fixed arrival rate: call n is due n / rate after the start, whatever came before.
    assert [lob_load.schedule(100.0, 5.0, n) for n in (0, 1, 250)] == [5.0, 5.01, 7.5]


def test_an_error_answer_is_counted_and_gateway_lines_are_picked_by_client() -> None:
    async def failing() -> tuple[int, bytes]:
        return 503, b"upstream connect error"

    async def cut() -> tuple[int, bytes]:
        raise HttpError("IncompleteReadError: 0 bytes read")

    async def scenario() -> lob_load.Load:
        load = lob_load.Load()
        await load.call("get profile", failing, time.monotonic())
        await load.call("search", cut, time.monotonic())
        return load

    load = asyncio.run(scenario())
    assert load.errors == [
        "get profile: HTTP 503 upstream connect error",
        "search: IncompleteReadError: 0 bytes read",
    ]
    log = "\n".join(
        json.dumps({"path": path, "durationMs": ms, "userAgent": agent})
        for path, ms, agent in (
            ("/v1/profiles/abc", "12", lob_load.LOAD_AGENT),
            ("/v1/profiles:search?query=x", "30", lob_load.LOAD_AGENT),
            ("/v1/changes:stream", "60000", lob_load.LOAD_AGENT),
            ("/v1/profiles/abc", "3", lob_load.IDLE_AGENT),
        )
    )
    assert lob_load.gateway_latencies(log, lob_load.LOAD_AGENT) == {
        "get profile": [12.0],
        "search": [30.0],
    }


def test_an_event_missing_at_any_reader_is_lost_and_throughput_waits_for_the_slowest() -> None:
    count = 4
    numbers = range(notifier_throughput.THROUGHPUT_FIRST, notifier_throughput.THROUGHPUT_FIRST + 4)
    steady = {notifier_throughput.LATENCY_FIRST: 100.0}
    fast = {**{n: 10.5 for n in numbers}, notifier_throughput.LATENCY_FIRST: 100.01}
    slow = {**{n: 11.0 for n in numbers}}  # the steady phase's event never came
    published = {"throughput_started": 10.0, "scheduled": steady, "achieved": 1000.0}
    rows = notifier_throughput._rows([fast, slow], published, count, 1.0)
    by_name = {row.name: row for row in rows}
    assert by_name["notifier publish-to-stream throughput"].value == 4  # 4 events in 1 s
    assert by_name["notifier events lost"].value == 1
    assert bench_main.unmet_required(rows) != []
    assert by_name["notifier publish-to-stream latency p99"].value == pytest.approx(10.0)


def test_a_differ_that_misses_a_change_breaks_the_compare_suite() -> None:
    right = differ_compare.Measured(1.0, {"updated": 10, "created": 0})
    differ_compare._check(right, 1_000, first=False, who="ours")
    with pytest.raises(AssertionError, match="plain found"):
        differ_compare._check(
            differ_compare.Measured(1.0, {"updated": 9}), 1_000, first=False, who="plain"
        )


def test_graph_is_made_as_slow_as_a_real_tenant_and_the_model_used_is_named(
    tmp_path: pathlib.Path,
) -> None:
    with (
        running_emulator(tmp_path, users=1) as ready,
        emulator_http(str(ready["url"]), str(ready["caFile"])) as admin,
    ):
        model = realistic_latency(admin)
        config = admin.get("/_emulator/config").json()
    assert config["quotaPer10s"] == L_TIER_QUOTA
    if model.per_item:
        assert (config["profileLatencyMedianMs"], config["profileLatencyP99Ms"]) == (300, 1500)
        assert "300 ms median" in model.describe()
    else:  # an emulator without per-item latency: every $batch waits a second
        assert config["batchLatencyMs"] == 1000
        assert "every $batch 1,000 ms" in model.describe()


def test_the_load_client_reads_sized_and_chunked_answers_and_reconnects_after_a_close() -> None:
    """A real HTTP/1.1 server on loopback answering the way Envoy may: with a length,
    chunked, or closing the connection after the answer."""
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy",
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    ]
    requests: list[bytes] = []
    connections_seen = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections_seen
        connections_seen += 1
        while answers:
            try:
                requests.append(await reader.readuntil(b"\r\n\r\n"))
            except asyncio.IncompleteReadError:
                break
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer:
                break
        writer.close()

    async def scenario() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, Connections(f"http://127.0.0.1:{port}", 1, {"X-Who": "bench"}) as c:
            return [await c.get(f"/v1/changes?n={n}") for n in range(4)]

    got = asyncio.run(scenario())
    assert got == [(200, b"{}"), (200, b"[1,2]"), (503, b"busy"), (200, b"")]
    assert connections_seen == 2  # a new connection after the server closed one
    assert requests[0].startswith(b"GET /v1/changes?n=0 HTTP/1.1\r\n")
    assert b"X-Who: bench\r\n" in requests[0]
