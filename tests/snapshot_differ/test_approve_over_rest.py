"""The whole stack (emulator, services, Envoy): users deleted in the tenant
hold the sync; `POST /v1/syncs/{runId}:approveDeletes` releases it."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from devtools.devstack.lob_client import LobClient, emulator_http
from devtools.devstack.stack import Stack, StackOptions


@pytest.fixture(scope="module")
def rest_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(state_dir=tmp_path_factory.mktemp("approve-stack"), users=10, seed=3)
    with Stack(options) as running:
        yield running


def client(stack: Stack, *roles: str) -> LobClient:
    return LobClient.on_stack(stack, *roles)


@pytest.mark.timeout(600)
def test_deletions_wait_for_approval_over_rest(rest_stack: Stack, tmp_path: pathlib.Path) -> None:
    operator = client(rest_stack, "Profiles.Read", "Profiles.Sync")
    reader = client(rest_stack, "Profiles.Read")
    try:
        first = operator.sync_and_wait()
        assert first["state"] == "SUCCEEDED", first
        created, cursor = operator.changes()
        gone = [event["userId"] for event in created[:3]]
        with emulator_http(rest_stack.emulator_url, rest_stack.ca_file) as emulator:
            for user_id in gone:
                emulator.delete(f"/_emulator/users/{user_id}").raise_for_status()

        held = operator.sync_and_wait()
        assert held["state"] == "HELD_FOR_DELETES", held
        assert held["counts"]["heldDeletes"] == "3"
        assert f"/v1/syncs/{held['runId']}:approveDeletes" in held["error"]
        assert operator.changes(cursor)[0] == []

        route = f"/v1/syncs/{held['runId']}:approveDeletes"
        forbidden = reader.http.post(route, json={})
        assert forbidden.status_code == 403, forbidden.text
        approving = operator.http.post(route, json={})
        assert approving.status_code == 200, approving.text
        assert approving.json()["state"] == "RUNNING"
        done = operator.wait_for_run(approving.json(), timeout=300)
        assert done["state"] == "SUCCEEDED" and done["counts"]["deleted"] == "3"

        events, _ = operator.changes(cursor)
        assert sorted(e["userId"] for e in events) == sorted(gone)
        assert {e["kind"] for e in events} == {"DELETED"}

        again = operator.http.post(route, json={})
        assert again.status_code == 400
        assert "is not held for deletes (state SUCCEEDED)" in again.json()["message"]
        missing = operator.http.post("/v1/syncs/20260101T000000000Z-0:approveDeletes", json={})
        assert missing.status_code == 404 and "not found" in missing.json()["message"]
    finally:
        operator.close()
        reader.close()
