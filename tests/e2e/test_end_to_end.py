"""The whole stack as separate processes (real redis-server, real Envoy, the
Graph emulator over TLS), driven through the REST gateway like a LOB app."""

from __future__ import annotations

import pathlib
import signal

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.devstack.lob_client import LobClient, edit_in_delve, emulator_token
from devtools.devstack.stack import Stack, StackOptions


def test_an_edit_in_delve_reaches_the_lob_app_as_one_update(
    stack: Stack, lob: LobClient, baseline_cursor: str
) -> None:
    before = lob.http.get("/v1/profiles:batchGet")  # wrong method: refused, not a 500
    assert before.status_code in (404, 405)
    profile = lob.http.get("/v1/profiles/" + _some_user(lob, baseline_cursor)).json()
    edit_in_delve(
        stack.emulator_url,
        stack.ca_file,
        profile["id"],
        aboutMe="Now leading the Apollo migration.",
    )

    run = lob.sync_and_wait()
    assert run["state"] == "SUCCEEDED"
    assert run["counts"]["updated"] == "1" and run["counts"]["unchanged"] == "39"
    events, cursor = lob.changes(baseline_cursor)
    assert len(events) == 1
    [event] = events
    assert event["kind"] == "UPDATED" and event["userId"] == profile["id"]
    assert event["changedFields"] == ["aboutMe"]
    assert event["before"]["aboutMe"] == profile["aboutMe"]
    assert event["after"]["aboutMe"] == "Now leading the Apollo migration."
    [change] = event["fieldChanges"]
    assert change["before"] == profile["aboutMe"]
    assert change["after"] == "Now leading the Apollo migration."

    # A second sync with no edits publishes nothing.
    assert lob.sync_and_wait()["counts"]["updated"] == "0"
    assert lob.changes(cursor)[0] == []


def _some_user(lob: LobClient, cursor: str) -> str:
    events, _ = lob.changes()
    return str(events[5]["userId"])


def test_a_lob_edit_is_written_to_graph_and_comes_back_marked_lob(
    stack: Stack, lob: LobClient, baseline_cursor: str
) -> None:
    _, cursor = lob.changes(baseline_cursor)
    users, _ = lob.changes()
    target = users[11]["after"]
    token = emulator_token(stack.emulator_url, stack.ca_file, user=target["userPrincipalName"])
    current = lob.http.get(f"/v1/profiles/{target['id']}").json()

    response = lob.update_profile(
        target["id"], token, skills=["Rust", "Kubernetes"], expectedVersion=current["version"]
    )
    assert response.status_code == 200, response.text
    assert sorted(response.json()["skills"]) == ["Kubernetes", "Rust"]

    stale = lob.update_profile(
        target["id"], token, skills=["Go"], expectedVersion=current["version"]
    )
    assert stale.status_code == 409 and "current version is" in stale.json()["message"]

    lob.sync_and_wait()
    [event] = lob.changes(cursor)[0]
    assert event["origin"] == "LOB" and event["changedFields"] == ["skills"]
    assert sorted(event["fieldChanges"][0]["added"]) == ["Kubernetes", "Rust"]


def test_bad_requests_get_clear_errors(lob: LobClient) -> None:
    missing = lob.http.get("/v1/profiles/nobody@contoso.onmicrosoft.com")
    assert missing.status_code == 404 and "not found" in missing.json()["message"]
    bad_id = lob.http.get("/v1/profiles/a%20b")
    assert bad_id.status_code == 400 and bad_id.json()["message"].startswith("id:")
    assert lob.http.get("/v1/syncs/no-such-run").status_code == 404
    page = lob.http.get("/v1/changes", params={"pageSize": 5000})
    assert page.status_code == 400 and "pageSize" in page.json()["message"]
    for response in (missing, bad_id, page):
        assert "Traceback" not in response.text


def test_every_service_answers_health_serving(stack: Stack) -> None:
    for name, service in [
        ("extender", "profilesync.v1.ProfileExtender"),
        ("differ", "profilesync.v1.SnapshotDiffer"),
        ("notifier", "profilesync.v1.LobNotifier"),
    ]:
        with grpc.insecure_channel(stack.address(name)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for check in ("", service):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=check), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, (name, check)


def test_the_cronjob_entry_point_runs_one_sync(stack: Stack, tmp_path: pathlib.Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "services.snapshot_differ", "run"],
        env=stack.differ_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert '"state": "SUCCEEDED"' in result.stdout.splitlines()[-1]


def test_services_stop_cleanly_on_sigterm(tmp_path: pathlib.Path) -> None:
    # A stack of its own, so stopping it does not disturb the tests above.
    with Stack(StackOptions(state_dir=tmp_path, users=5)) as own:
        processes = {
            name: own.processes[name] for name in ("extender", "differ", "notifier", "gateway")
        }
        for process in processes.values():
            process.signal(signal.SIGTERM)
        for name, process in processes.items():
            assert process.process is not None
            assert process.process.wait(20) == 0, f"{name} exited uncleanly:\n{process.tail()}"


def test_each_service_serves_prometheus_metrics(stack: Stack, lob: LobClient) -> None:
    lob.http.get("/v1/syncs")  # at least one call through the differ
    for name in ("extender", "differ", "notifier"):
        port = stack.processes[name].ready["metricsPort"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "profilesync_grpc_requests_total" in text, name
    differ_port = stack.processes["differ"].ready["metricsPort"]
    text = httpx.get(f"http://127.0.0.1:{differ_port}/metrics", timeout=10).text
    assert 'method="/profilesync.v1.SnapshotDiffer/ListSyncs"' in text


def test_batch_get_returns_found_profiles_in_order_and_names_the_missing(
    lob: LobClient, baseline_cursor: str
) -> None:
    users = [event["after"] for event in lob.changes()[0][:3]]
    ids = [users[2]["id"], "nobody@contoso.onmicrosoft.com", users[0]["userPrincipalName"]]
    response = lob.http.post("/v1/profiles:batchGet", json={"ids": ids})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["id"] for p in body["profiles"]] == [users[2]["id"], users[0]["id"]]
    assert body["notFound"] == ["nobody@contoso.onmicrosoft.com"]
    too_many = lob.http.post("/v1/profiles:batchGet", json={"ids": ["u"] * 101})
    assert too_many.status_code == 400 and "ids: at most 100" in too_many.json()["message"]
