"""Notifier: events per second from Publish to 10 LOB stream readers through
the gateway, and latency at a steady 1,000 events/s.

    python -m bench --only notifier_throughput [--quick]

The whole stack (real Redis, the notifier with its token checks, Envoy). This
process publishes over gRPC with an app token, as the differ does; 10 LOB
readers hold `GET /v1/changes:stream` open through the gateway, spread over
reader processes of their own (so reading does not slow publishing, and the
readers' clocks, `time.monotonic()`, are the publisher's).

- throughput: N events published as fast as one publisher goes, in batches of
  500 (the differ's publish batch); events/s from the first Publish call to
  the last event arriving at the slowest reader, every reader receiving every
  event. Goal ≥ 5,000 events/s.
- latency: a steady 1,000 events/s on a fixed schedule (10 events every
  10 ms, a slow answer delays no later tick); for each event at each reader,
  the time from its tick's scheduled send time to its arrival (p50, p99).
  Goal p99 ≤ 50 ms.

Events carry a realistic profile before and after (about 1.5 KB serialized).
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import queue
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.results import Result
from devtools.devstack.lob_client import emulator_token
from devtools.devstack.stack import Stack, StackOptions
from profilesync.v1 import notifier_pb2, notifier_pb2_grpc, profile_pb2

__all__ = ["run"]

THROUGHPUT_GOAL = 5_000  # events/s to every reader
LATENCY_P99_GOAL_MS = 50.0
READERS = 10
READER_PROCESSES = 5
PUBLISH_BATCH = 500
RATE = 1_000
TICK_SECONDS = 0.01
WARM_UP = 500
# Event numbers of the phases: warm-up from 0, throughput from here, latency after it.
THROUGHPUT_FIRST = 1_000
LATENCY_FIRST = 1_000_000
EVENT_NUMBER = re.compile(rb'"eventId":\s*"bench-(\d+)"')


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


# -- the readers (in processes of their own) ----------------------------------
async def _read_stream(
    http: httpx.AsyncClient,
    expected: int,
    arrivals: dict[int, float],
    ready: asyncio.Event,
    progress: Callable[[int], None],
) -> None:
    """One LOB reader: every event's arrival time, until `expected` events came;
    `progress` is told how many came so far after each read."""
    pending = b""
    params = {"heartbeatSeconds": 300}
    async with http.stream("GET", "/v1/changes:stream", params=params) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            at = time.monotonic()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                found = EVENT_NUMBER.search(line)
                if found is None:
                    ready.set()  # the first heartbeat: the stream is open
                    continue
                arrivals[int(found.group(1))] = at
            progress(len(arrivals))
            if len(arrivals) >= expected:
                return


async def _readers(
    gateway_url: str,
    token: str,
    slots: range,
    expected: int,
    shared: tuple[Any, Any, Any],
) -> list[dict[int, float]]:
    ready, done, received = shared
    count = len(slots)
    async with httpx.AsyncClient(
        base_url=gateway_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(600.0),
        limits=httpx.Limits(max_connections=count),
        trust_env=False,
    ) as http:
        arrivals: list[dict[int, float]] = [{} for _ in range(count)]
        opened = [asyncio.Event() for _ in range(count)]
        tasks = [
            asyncio.ensure_future(
                _read_stream(
                    http,
                    expected,
                    arrivals[i],
                    opened[i],
                    functools.partial(received.__setitem__, slots[i]),
                )
            )
            for i in range(count)
        ]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), timeout=60)
        ready.put(count)
        # Until every event came, or the publisher gives up on the readers.
        waiting = asyncio.ensure_future(asyncio.gather(*tasks))
        while not waiting.done() and not done.is_set():
            await asyncio.wait({waiting}, timeout=0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return arrivals


def _reader_process(
    gateway_url: str,
    token: str,
    slots: range,
    expected: int,
    shared: tuple[Any, Any, Any],
    out: Any,
) -> None:
    out.put(asyncio.run(_readers(gateway_url, token, slots, expected, shared)))


# -- the publisher -------------------------------------------------------------
class _Publisher:
    """Publish calls with an app token (Profiles.Sync), as the differ makes them."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = notifier_pb2_grpc.LobNotifierStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def publish(self, first: int, count: int) -> None:
        events = [_event(n) for n in range(first, first + count)]
        await self._call(notifier_pb2.PublishRequest(events=events))

    async def _call(self, request: notifier_pb2.PublishRequest) -> None:
        await self._stub.Publish(request, metadata=self._metadata)

    async def as_fast_as_it_goes(self, first: int, count: int) -> float:
        """Events first..first+count in batches, one call at a time; when the first started
        (the calls are built before: building them is not the notifier's work)."""
        requests = [
            notifier_pb2.PublishRequest(
                events=[_event(n) for n in range(start, min(start + PUBLISH_BATCH, first + count))]
            )
            for start in range(first, first + count, PUBLISH_BATCH)
        ]
        started = time.monotonic()
        for request in requests:
            await self._call(request)
        return started

    async def steadily(self, first: int, seconds: float) -> tuple[dict[int, float], float]:
        """1,000 events/s on a fixed schedule (a slow answer delays no later tick);
        each event's scheduled send time, and the rate achieved."""
        per_tick = int(RATE * TICK_SECONDS)
        ticks = int(seconds / TICK_SECONDS)
        scheduled: dict[int, float] = {}
        calls: list[asyncio.Future[None]] = []
        started = time.monotonic()
        for tick in range(ticks):
            at = started + tick * TICK_SECONDS
            if (delay := at - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            base = first + tick * per_tick
            scheduled.update((n, at) for n in range(base, base + per_tick))
            calls.append(asyncio.ensure_future(self.publish(base, per_tick)))
        elapsed = time.monotonic() - started
        await asyncio.gather(*calls)
        return scheduled, ticks * per_tick / elapsed


async def _drained(received: Any, target: int, seconds: float = 300.0) -> None:
    """Until every reader has `target` events (or `seconds`: what is missing is lost).
    The counts are written by other processes: polled, there is nothing to await."""
    deadline = time.monotonic() + seconds
    while min(received) < target and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def _publish(
    notifier_addr: str, token: str, count: int, seconds: float, received: Any
) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(notifier_addr) as channel:
        publisher = _Publisher(channel, token)
        await publisher.as_fast_as_it_goes(0, WARM_UP)  # connections, scripts, code paths
        throughput_started = await publisher.as_fast_as_it_goes(THROUGHPUT_FIRST, count)
        # Every reader has the throughput phase before the steady phase starts, so
        # no backlog of the one is timed in the other.
        await _drained(received, WARM_UP + count)
        scheduled, achieved = await publisher.steadily(LATENCY_FIRST, seconds)
    return {"throughput_started": throughput_started, "scheduled": scheduled, "achieved": achieved}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _measure(stack: Stack, count: int, seconds: float) -> list[Result]:
    read_token = emulator_token(stack.emulator_url, stack.ca_file, roles=["Profiles.Read"])
    sync_token = emulator_token(stack.emulator_url, stack.ca_file, roles=["Profiles.Sync"])
    expected = WARM_UP + count + int(seconds / TICK_SECONDS) * int(RATE * TICK_SECONDS)
    context = multiprocessing.get_context("spawn")
    ready, out, done = context.Queue(), context.Queue(), context.Event()
    # Events each reader has received so far (one slot a reader, one writer a slot).
    received = context.Array("l", READERS, lock=False)
    per_process = READERS // READER_PROCESSES
    processes = [
        context.Process(
            target=_reader_process,
            args=(
                stack.gateway_url,
                read_token,
                range(number * per_process, (number + 1) * per_process),
                expected,
                (ready, done, received),
                out,
            ),
            daemon=True,
        )
        for number in range(READER_PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=120)
        published = asyncio.run(_publish(stack.notifier_addr, sync_token, count, seconds, received))
        # Every reader has every event by now, or is given a minute to catch up;
        # then what each has is counted, and anything missing is lost.
        deadline = time.monotonic() + 60
        arrivals: list[dict[int, float]] = []
        for _ in processes:
            try:
                arrivals += out.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                done.set()
                arrivals += out.get(timeout=60)
    finally:
        done.set()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return _rows(arrivals, published, count, seconds)


def _rows(
    arrivals: list[dict[int, float]], published: dict[str, Any], count: int, seconds: float
) -> list[Result]:
    throughput_numbers = range(THROUGHPUT_FIRST, THROUGHPUT_FIRST + count)
    scheduled: dict[int, float] = published["scheduled"]
    missing = sum(
        1 for reader in arrivals for n in [*throughput_numbers, *scheduled] if n not in reader
    )
    last = max(reader.get(n, 0.0) for reader in arrivals for n in throughput_numbers)
    rate = count / (last - published["throughput_started"])
    latencies = [
        (reader[n] - at) * 1000 for reader in arrivals for n, at in scheduled.items() if n in reader
    ]
    p50, p99 = (
        (statistics.median(latencies), _percentile(latencies, 0.99)) if latencies else (-1.0, -1.0)
    )
    readers = f"{len(arrivals)} REST stream readers through the gateway"
    steady = (
        f"{RATE:,} events/s for {seconds:g} s (achieved {published['achieved']:,.0f}/s), "
        f"10 per Publish, {readers}; from each tick's scheduled send time"
    )
    return [
        Result(
            "notifier publish-to-stream throughput",
            f"{count:,} events (~1.5 KB), batches of {PUBLISH_BATCH}, {readers}; to the "
            "slowest reader",
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
        ),
        Result(
            "notifier publish-to-stream latency p99",
            steady,
            round(p99, 2),
            "ms",
            goal=f"<= {LATENCY_P99_GOAL_MS:g} ms",
            met=0 <= p99 <= LATENCY_P99_GOAL_MS,
        ),
        Result(
            "notifier events lost",
            f"{readers}; events published but not on a reader's stream within a minute",
            missing,
            "events",
            goal="0",
            met=missing == 0,
            required=True,
        ),
    ]


def run(quick: bool) -> list[Result]:
    count = 2_000 if quick else 50_000
    seconds = 3.0 if quick else 15.0
    with tempfile.TemporaryDirectory(prefix="bench-notifier-") as state:
        options = StackOptions(state_dir=Path(state), users=10, log_level="WARNING")
        with Stack(options) as stack:
            return _measure(stack, count, seconds)
