"""Redis (ElastiCache) restarting under a running system.

Outcome asserted: a sync that loses Redis mid-run ends FAILED or finishes,
never hangs; the next sync publishes every pending change; the LOB app sees
each change exactly once by event id and no invented change; a stream cut by
the restart resumes from its cursor without a gap.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from graph_admin import configure_graph

from devtools.devstack.lob_client import LobClient, edit_in_delve, emulator_http
from devtools.devstack.stack import Stack, StackOptions

USERS = 2500
QUOTA = 2500  # resource units per 10 s: a full sync takes about ten seconds


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(
        state_dir=tmp_path_factory.mktemp("faults-redis"),
        users=USERS,
        seed=11,
        redis_persistent=True,
        env={"GRAPH_QUOTA_PER_10S": str(QUOTA)},
    )
    with Stack(options) as running:
        configure_graph(running, quotaPer10s=QUOTA)
        yield running


@pytest.fixture
def lob(stack: Stack, lob_for: Callable[[Stack], LobClient]) -> LobClient:
    return lob_for(stack)


def wait_for_end(lob: LobClient, run_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = lob.http.get(f"/v1/syncs/{run_id}")
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        if response.status_code == 200 and response.json()["state"] != "RUNNING":
            return dict(response.json())
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not end within {timeout}s")


def test_a_sync_that_loses_redis_midway_loses_and_invents_nothing(
    stack: Stack, lob: LobClient
) -> None:
    assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    _, cursor = lob.changes()
    users = [e["after"] for e in lob.changes()[0][:8]]

    for user in users[:5]:
        edit_in_delve(stack.emulator_url, stack.ca_file, user["id"], aboutMe="after the storm")
    with emulator_http(stack.emulator_url, stack.ca_file) as admin:
        admin.delete(f"/_emulator/users/{users[5]['id']}").raise_for_status()
        created = admin.post(
            "/_emulator/users",
            json={
                "displayName": "New Starter",
                "userPrincipalName": "new.starter@contoso.onmicrosoft.com",
            },
        )
        created.raise_for_status()
    expected = {(u["id"], "UPDATED") for u in users[:5]}
    expected |= {(users[5]["id"], "DELETED"), (created.json()["id"], "CREATED")}

    run = lob.http.post("/v1/syncs", json={}).json()
    time.sleep(2.0)  # well inside the ~10 s the run needs
    stack.kill_redis()
    time.sleep(1.0)
    stack.start_redis_again()
    interrupted = wait_for_end(lob, run["runId"])
    assert interrupted["state"] in ("FAILED", "SUCCEEDED"), interrupted

    final = lob.sync_and_wait()
    assert final["state"] == "SUCCEEDED", final
    events, _ = lob.changes(cursor)
    ids = Counter(event["eventId"] for event in events)
    assert all(count == 1 for count in ids.values()), "an event id was logged twice"
    assert {(e["userId"], e["kind"]) for e in events} == expected
    # And nothing more is pending.
    assert lob.sync_and_wait()["counts"]["unchanged"] == str(USERS)


def test_a_stream_cut_by_a_redis_restart_resumes_from_its_cursor(
    stack: Stack, lob: LobClient
) -> None:
    _, cursor = lob.changes()
    received: list[dict[str, Any]] = []
    stop = threading.Event()

    def consume() -> None:
        nonlocal cursor
        import json

        while not stop.is_set():
            try:
                with lob.http.stream(
                    "GET", "/v1/changes:stream", params={"afterCursor": cursor}, timeout=30
                ) as response:
                    for line in response.iter_lines():
                        if not line.strip():
                            continue
                        item = json.loads(line)
                        event = item.get("result", item)
                        if event.get("eventId"):
                            received.append(event)
                            cursor = event["cursor"]
                        if stop.is_set():
                            return
            except (httpx.HTTPError, ValueError):
                time.sleep(0.5)  # reconnect from the last cursor

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    users = [e["after"] for e in lob.changes()[0][20:26]]
    for user in users[:3]:
        edit_in_delve(stack.emulator_url, stack.ca_file, user["id"], interests=["Before restart"])
    assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    stack.kill_redis()
    time.sleep(1.0)
    stack.start_redis_again()
    for user in users[3:]:
        edit_in_delve(stack.emulator_url, stack.ca_file, user["id"], interests=["After restart"])
    assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    deadline = time.monotonic() + 60
    while len(received) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    assert sorted(e["userId"] for e in received) == sorted(u["id"] for u in users)
    assert len({e["eventId"] for e in received}) == 6
