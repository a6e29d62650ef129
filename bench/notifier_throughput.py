"""Notifier: events per second from Publish to a streaming reader, and latency at 1,000 events/s.

The notifier runs in its own process on a real redis-server, without token checks
(they are per call, not per event, and measured elsewhere). This process publishes
over gRPC and reads one StreamChanges call, as the differ and a LOB app would.

- throughput: N events published as fast as one publisher goes, in batches of 500
  (the differ's PUBLISH_BATCH); events per second from the first Publish call to
  the last event arriving on the stream.
- latency: a steady 1,000 events per second (10 events every 10 ms), for a few
  seconds; for each event, the time from the start of its Publish call to its
  arrival on the stream (p50 and p99).

Events carry a realistic profile before and after (about 1.5 KB serialized).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import pathlib
import statistics
import tempfile
import time
import uuid
from typing import Any

import grpc

from bench.results import Result
from profilesync.v1 import notifier_pb2, notifier_pb2_grpc, profile_pb2

__all__ = ["run"]

# The end of a stream (grpc's stubs do not declare it).
STREAM_END: Any = getattr(grpc.aio, "EOF")  # noqa: B009

THROUGHPUT_GOAL = 2_000  # events/s: a 100,000-user first sync delivered in under a minute
LATENCY_P99_GOAL_MS = 100.0
PUBLISH_BATCH = 500
RATE = 1_000
TICK_SECONDS = 0.01


def _serve(
    redis_url: str, stream_key: str, ready: Any, stop: multiprocessing.synchronize.Event
) -> None:
    """The notifier process: a servicer on a free port until `stop` is set."""
    from services.common.config import ServerSettings
    from services.common.redis_client import connect
    from services.common.server import create_server
    from services.lob_notifier.change_log import ChangeLog
    from services.lob_notifier.servicer import LobNotifierServicer, binding

    async def main() -> None:
        redis = connect(redis_url)
        servicer = LobNotifierServicer(ChangeLog(redis, stream_key, max_events=1_000_000))
        settings = ServerSettings("127.0.0.1", 0, None, None, 1.0, "WARNING")
        server, port, _ = await create_server(settings, [binding(servicer)])
        await server.start()
        ready.put(port)
        await asyncio.to_thread(stop.wait)
        await servicer.close()
        await server.stop(1)
        await redis.aclose()

    asyncio.run(main())


def _profile(user: str, skills: list[str]) -> profile_pb2.Profile:
    return profile_pb2.Profile(
        id=user,
        user_principal_name=f"{user}@contoso.example",
        display_name="Adele Vance",
        mail=f"{user}@contoso.example",
        job_title="Retail Manager",
        department="Retail",
        about_me="Leads the northwest stores; ask me about forecasting and store layouts. " * 3,
        skills=skills,
        past_projects=["Store redesign 2023", "Inventory forecasting", "Loyalty app launch"],
        schools=["University of Washington"],
        interests=["cycling", "photography", "board games"],
        version="0" * 64,
    )


def _event(n: int) -> notifier_pb2.ChangeEvent:
    user = f"user-{n % 10_000:05d}"
    return notifier_pb2.ChangeEvent(
        event_id=f"bench-{n:09d}",
        run_id="bench-run",
        user_id=user,
        kind=notifier_pb2.UPDATED,
        changed_fields=["skills"],
        before=_profile(user, ["retail", "forecasting"]),
        after=_profile(user, ["retail", "forecasting", "negotiation"]),
        origin=notifier_pb2.SHAREPOINT,
    )


def _number(event: notifier_pb2.ChangeEvent) -> int:
    return int(event.event_id.removeprefix("bench-"))


async def _open_stream(stub: notifier_pb2_grpc.LobNotifierStub) -> Any:
    call = stub.StreamChanges(notifier_pb2.StreamChangesRequest(heartbeat_seconds=300))
    first = await asyncio.wait_for(call.read(), timeout=30)
    assert first.heartbeat, "a fresh stream starts with a heartbeat"
    return call


async def _throughput(stub: notifier_pb2_grpc.LobNotifierStub, first: int, count: int) -> float:
    call = await _open_stream(stub)
    events = [_event(n) for n in range(first, first + count)]
    received = 0

    async def read() -> float:
        nonlocal received
        while received < count:
            event = await call.read()
            if event is STREAM_END:
                raise RuntimeError("the stream ended early")
            if not event.heartbeat:
                received += 1
        return time.perf_counter()

    reader = asyncio.ensure_future(read())
    started = time.perf_counter()
    for start in range(0, count, PUBLISH_BATCH):
        batch = events[start : start + PUBLISH_BATCH]
        await stub.Publish(notifier_pb2.PublishRequest(events=batch))
    finished = await asyncio.wait_for(reader, timeout=300)
    call.cancel()
    return count / (finished - started)


async def _latency(
    stub: notifier_pb2_grpc.LobNotifierStub, first: int, seconds: float
) -> tuple[list[float], float]:
    call = await _open_stream(stub)
    per_tick = int(RATE * TICK_SECONDS)
    ticks = int(seconds / TICK_SECONDS)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    total = ticks * per_tick

    async def read() -> None:
        while len(latencies) < total:
            event = await call.read()
            if event is STREAM_END:
                raise RuntimeError("the stream ended early")
            if not event.heartbeat:
                arrived = time.perf_counter()
                latencies.append((arrived - sent_at[_number(event) // per_tick]) * 1000)

    reader = asyncio.ensure_future(read())
    started = time.perf_counter()
    pending: set[asyncio.Future[Any]] = set()
    for tick in range(ticks):
        # A fixed schedule: a slow answer delays no later tick.
        delay = started + tick * TICK_SECONDS - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        base = first + tick * per_tick
        sent_at[base // per_tick] = time.perf_counter()
        batch = [_event(n) for n in range(base, base + per_tick)]
        publish = asyncio.ensure_future(stub.Publish(notifier_pb2.PublishRequest(events=batch)))
        pending.add(publish)
        publish.add_done_callback(pending.discard)
    elapsed = time.perf_counter() - started
    await asyncio.wait_for(reader, timeout=120)
    call.cancel()
    return latencies, total / elapsed


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _measure(port: int, quick: bool) -> list[Result]:
    count = 5_000 if quick else 50_000
    seconds = 3.0 if quick else 15.0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = notifier_pb2_grpc.LobNotifierStub(channel)
        await _throughput(stub, 0, 500)  # warm-up: connections, scripts, code paths
        rate = await _throughput(stub, 1_000, count)
        latencies, achieved = await _latency(stub, 1_000_000, seconds)
    p50, p99 = statistics.median(latencies), _percentile(latencies, 0.99)
    steady = f"{RATE:,} events/s for {seconds:g}s (achieved {achieved:,.0f}/s), 10 per Publish"
    return [
        Result(
            "notifier publish-to-stream throughput",
            f"{count:,} events (~1.5 KB), batches of {PUBLISH_BATCH}, one stream reader",
            round(rate),
            "events/s",
            goal=f">= {THROUGHPUT_GOAL:,} events/s",
            met=rate >= THROUGHPUT_GOAL,
        ),
        Result(
            "notifier publish-to-stream latency p50",
            steady,
            round(p50, 2),
            "ms",
            goal=f"< {LATENCY_P99_GOAL_MS:g} ms",
            met=p50 < LATENCY_P99_GOAL_MS,
        ),
        Result(
            "notifier publish-to-stream latency p99",
            steady,
            round(p99, 2),
            "ms",
            goal=f"< {LATENCY_P99_GOAL_MS:g} ms",
            met=p99 < LATENCY_P99_GOAL_MS,
        ),
    ]


def run(quick: bool) -> list[Result]:
    from services.devstack.redis_server import start_redis

    with tempfile.TemporaryDirectory(prefix="bench-notifier-") as work:
        redis, redis_url = start_redis(pathlib.Path(work) / "redis")
        context = multiprocessing.get_context("spawn")
        ready = context.Queue()
        stop = context.Event()
        server = context.Process(
            target=_serve,
            args=(redis_url, f"bench:changes:{uuid.uuid4().hex}", ready, stop),
            daemon=True,
        )
        server.start()
        try:
            port = ready.get(timeout=60)
            return asyncio.run(_measure(port, quick))
        finally:
            stop.set()
            server.join(timeout=30)
            if server.is_alive():
                server.kill()
            redis.stop()
