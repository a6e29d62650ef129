"""The notifier's REST routes through the real gateway (Envoy's gRPC-JSON transcoder)."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import grpc
import httpx
import pytest

from devtools.local_grpc import start_server
from devtools.processes import ManagedProcess, python_module
from services.common.redis_client import connect
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.servicer import LobNotifierServicer, binding

ROOT = pathlib.Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
SECRET = "a-webhook-secret-of-some-length"

T = TypeVar("T")


class ThreadedNotifier:
    """The notifier on its own event loop in a thread, so a module shares it
    while each test keeps its own loop. Its log is tight (10 events) so that
    retention is easy to overtake."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.stream_key = f"test:changes:gateway:{uuid.uuid4().hex}"
        self.port = 0
        self.log: ChangeLog | None = None
        self.servicer: LobNotifierServicer | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    def start(self) -> ThreadedNotifier:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.log = ChangeLog(connect(self.redis_url), self.stream_key, max_events=10)
        self.servicer = LobNotifierServicer(self.log, heartbeat_seconds=1)
        self._server, self.port = await start_server(
            binding(self.servicer), shutdown_grace_seconds=0.5
        )

    def publish(self, start: int, stop: int) -> str:
        from notifier_events import make_event

        assert self.log is not None
        result = self.run(self.log.publish([make_event(n) for n in range(start, stop)]))
        return result.last_cursor

    def stop(self) -> None:
        async def stop() -> None:
            if self.servicer is not None:
                await self.servicer.close()  # ends the streams Envoy still holds open
            if self._server is not None:
                await self._server.stop(1)
            # Let every cancelled call finish before the loop goes away.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            if self.log is not None:
                keys = [k async for k in self.log.redis.scan_iter(match=f"*{self.stream_key}*")]
                if keys:
                    await self.log.redis.delete(*keys)
                await self.log.redis.aclose()

        self.run(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def backend(redis_url: str) -> Iterator[ThreadedNotifier]:
    notifier = ThreadedNotifier(redis_url).start()
    try:
        yield notifier
    finally:
        notifier.stop()


@pytest.fixture(scope="module")
def gateway_url(
    backend: ThreadedNotifier, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if not DESCRIPTOR_SET.is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py")], check=True)
    work = tmp_path_factory.mktemp("gateway")
    address = f"127.0.0.1:{backend.port}"
    process = ManagedProcess(
        "gateway",
        python_module("services.gateway"),
        log_dir=work,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EXTENDER_ADDR": address,
            "DIFFER_ADDR": address,
            "NOTIFIER_ADDR": address,
            "GATEWAY_PORT": "0",
            "GATEWAY_DESCRIPTOR_SET": str(DESCRIPTOR_SET),
            "READY_FILE": str(work / "gateway.ready"),
            "STATE_DIR": str(work / "state"),
        },
        ready_file=work / "gateway.ready",
        cwd=ROOT,
    ).start()
    try:
        yield str(process.wait_ready(60)["url"])
    finally:
        process.stop()


@pytest.fixture
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30.0, trust_env=False) as http:
        yield http


def test_subscribers_are_managed_over_rest(client: httpx.Client, backend: ThreadedNotifier) -> None:
    created = client.put(
        "/v1/subscribers/crm",
        json={"url": "https://lob.example.com/hook", "secret": SECRET, "startAt": "START_OLDEST"},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["name"] == "crm" and body["hasSecret"] is True and "secret" not in body
    assert body["source"] == "SOURCE_API" and body["status"]["state"] in ("CAUGHT_UP", "BEHIND")

    assert client.put("/v1/subscribers/reports", json={}).status_code == 200
    listed = client.get("/v1/subscribers").json()
    assert [s["name"] for s in listed["subscribers"]] == ["crm", "reports"]

    cursor = backend.publish(0, 3)
    page = client.get("/v1/changes", params={"subscriber": "reports"}).json()
    assert [e["eventId"] for e in page["events"]] == ["event-00000", "event-00001", "event-00002"]
    acked = client.post("/v1/subscribers/reports:ack", json={"cursor": page["nextCursor"]})
    assert acked.status_code == 200 and acked.json()["cursor"] == cursor
    assert acked.json()["status"]["state"] == "CAUGHT_UP"
    oldest = client.post("/v1/subscribers/reports:seek", json={"to": "START_OLDEST"})
    assert oldest.status_code == 200 and int(oldest.json()["status"]["lagEvents"]) >= 3

    dead = client.get("/v1/subscribers/crm/deadLetters", params={"pageSize": 5})
    assert dead.status_code == 200 and dead.json()["deadLetters"] == []
    replay = client.post("/v1/subscribers/crm/deadLetters:replay", json={"all": True})
    assert replay.status_code == 200 and replay.json()["queued"] == 0

    assert client.delete("/v1/subscribers/crm").status_code == 200
    missing = client.get("/v1/subscribers/crm")
    assert missing.status_code == 404
    assert missing.json()["message"] == "no subscriber named crm"


def test_bad_subscriber_input_is_a_400_naming_the_field(client: httpx.Client) -> None:
    answer = client.put("/v1/subscribers/crm", json={"url": "ftp://x", "secret": SECRET})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("url: must be an http or https URL")
    bad_name = client.put("/v1/subscribers/Not_OK", json={})
    assert bad_name.status_code == 400
    assert bad_name.json()["message"].startswith("name: must be a subscriber name")


def test_an_expired_cursor_is_a_400_naming_the_bootstrap_route(
    client: httpx.Client, backend: ThreadedNotifier
) -> None:
    first = backend.publish(100, 101)
    for start in range(101, 400, 50):
        backend.publish(start, start + 50)

    listed = client.get("/v1/changes", params={"afterCursor": first})
    streamed = client.get("/v1/changes:stream", params={"afterCursor": first})

    for answer in (listed, streamed):
        assert answer.status_code == 400
        assert answer.json()["code"] == grpc.StatusCode.OUT_OF_RANGE.value[0]
        message = answer.json()["message"]
        assert message.startswith(f"afterCursor: events after {first} are no longer")
        assert "bootstrap again" in message and "GET /v1/profiles" in message


def test_the_stream_sends_heartbeat_lines_while_idle(
    client: httpx.Client, backend: ThreadedNotifier
) -> None:
    lines: list[dict[str, Any]] = []
    with client.stream("GET", "/v1/changes:stream", params={"heartbeatSeconds": 1}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line:
                continue
            lines.append(json.loads(line))
            if len(lines) == 1:
                backend.publish(1000, 1001)  # between two heartbeats
            if len(lines) == 4:
                break
    start, event, *after = lines
    assert start["heartbeat"] is True and start["eventId"] == "" and start["cursor"]
    assert event["eventId"] == "event-01000" and event["heartbeat"] is False
    assert all(h["heartbeat"] is True and h["cursor"] == event["cursor"] for h in after)


def test_stream_lines_are_the_json_the_gateway_writes_for_the_same_events(
    client: httpx.Client, backend: ThreadedNotifier
) -> None:
    """The stream's lines are made by the notifier, a page of GET /v1/changes by
    Envoy's transcoder: a client sees the same JSON for the same event either way."""
    from notifier_events import rich_event

    assert backend.log is not None
    first = backend.publish(2000, 2001)
    backend.run(backend.log.publish([rich_event(n) for n in range(2001, 2004)]))

    page = client.get("/v1/changes", params={"afterCursor": first})
    assert page.status_code == 200
    listed = page.json()["events"]
    streamed: list[dict[str, Any]] = []
    with client.stream("GET", "/v1/changes:stream", params={"afterCursor": first}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        for line in response.iter_lines():
            streamed.append(json.loads(line))
            if len(streamed) == len(listed):
                break
    assert [event["eventId"] for event in listed] == [f"rich-{n:05d}" for n in range(2001, 2004)]
    assert streamed == listed
