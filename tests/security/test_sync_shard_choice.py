"""A LOB app cannot choose a sync's shard layout.

A layout the deployment does not use has no baseline: a run of it republished
every user of that shard as CREATED with new event ids, which subscribers cannot
tell from real changes, and kept another full baseline in Redis. Through the
gateway, with the stack's differ configured for one shard (SHARD_COUNT=1).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from security_tokens import ERROR_BODIES, issue

from devtools.devstack.lob_client import LobClient
from devtools.devstack.stack import Stack


def _run_ids(lob: LobClient) -> list[str]:
    response = lob.http.get("/v1/syncs", params={"pageSize": 100})
    response.raise_for_status()
    return [run["runId"] for run in response.json().get("runs", [])]


def _start(lob: LobClient, body: dict[str, Any]) -> httpx.Response:
    response = lob.http.post("/v1/syncs", json=body)
    if response.status_code >= 400:
        ERROR_BODIES.append(response.text)
    return response


def test_a_reader_cannot_start_another_shard_layout(
    security_stack: Stack, lob: LobClient, synced_users: list[dict[str, Any]]
) -> None:
    runs_before = _run_ids(lob)
    _, cursor = lob.changes()
    # The attack: several layouts at once, as a careless client retrying would.
    bodies = [{"shardIndex": i % 2, "shardCount": 2} for i in range(8)]
    bodies += [{"shardIndex": 1, "shardCount": 1}, {"shardIndex": 3, "shardCount": 7}]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: _start(lob, body), bodies))
    for body, response in zip(bodies, answers, strict=True):
        if body["shardIndex"] >= body["shardCount"]:
            assert response.status_code == 400, response.text
            assert "shardIndex must be below shardCount" in response.json()["message"]
            continue
        assert response.status_code == 403, response.text
        message = response.json()["message"]
        assert "needs the app role Profiles.Sync" in message
        assert "leave shardIndex and shardCount out" in message
        assert f"shardCount {body['shardCount']}" in message
    assert _run_ids(lob) == runs_before  # nothing started
    events, _ = lob.changes(cursor)
    assert [e for e in events if e.get("runId") not in runs_before] == []  # nobody republished


def test_the_operator_may_only_name_a_shard_of_the_configured_count(
    security_stack: Stack, lob: LobClient, synced_users: list[dict[str, Any]]
) -> None:
    runs_before = _run_ids(lob)
    token = issue(security_stack, roles=["Profiles.Sync"])
    with LobClient(security_stack.gateway_url, token) as operator:
        response = _start(operator, {"shardIndex": 0, "shardCount": 2})
    assert response.status_code == 400, response.text
    assert response.json()["message"] == (
        "shardCount must be this deployment's shard count (SHARD_COUNT=1), got 2: "
        "a sync of another layout would publish its users again"
    )
    assert _run_ids(lob) == runs_before


def test_a_reader_may_name_the_deployments_own_shard(
    security_stack: Stack, lob: LobClient, synced_users: list[dict[str, Any]]
) -> None:
    _, cursor = lob.changes()
    response = _start(lob, {"shardIndex": 0, "shardCount": 1})
    assert response.status_code == 200, response.text
    run = lob.wait_for_run(response.json(), timeout=300)
    assert run["state"] == "SUCCEEDED", run
    # The deployment's own layout has a baseline: nobody is published as created
    # again (other tests' edits may show up as updates).
    events, _ = lob.changes(cursor)
    assert [e for e in events if e.get("kind") == "CREATED"] == []
