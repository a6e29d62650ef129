"""`python -m services.lob_notifier` as a process: tokens, roles, metrics, SIGTERM, settings."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.devstack.emulator import running_emulator
from devtools.devstack.lob_client import emulator_token
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID
from devtools.processes import ManagedProcess, python_module
from profilesync.v1 import notifier_pb2, notifier_pb2_grpc
from services.lob_notifier.servicer import SERVICE_NAME

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRACE_SECONDS = 60


def _environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000001",
            "AZURE_CLIENT_ID": DEFAULT_CLIENT_ID,
        }
    )
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The Graph emulator, playing Entra ID: it issues the tokens the notifier checks."""
    with running_emulator(tmp_path_factory.mktemp("emulator")) as ready:
        yield ready


def _token(emulator: dict[str, Any], roles: list[str]) -> tuple[tuple[str, str], ...]:
    token = emulator_token(emulator["url"], emulator["caFile"], roles=roles)
    return (("authorization", f"Bearer {token}"),)


def test_the_process_serves_with_auth_and_ends_streams_at_once_on_sigterm(
    redis_url: str, emulator: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    ready_file = tmp_path / "notifier.ready.json"
    subscribers = tmp_path / "subscribers.json"
    subscribers.write_text(
        json.dumps([{"name": "crm", "url": "http://127.0.0.1:9/h", "secret": "s" * 24}])
    )
    process = ManagedProcess(
        "lob_notifier",
        python_module("services.lob_notifier"),
        log_dir=tmp_path,
        env=_environment(
            REDIS_URL=redis_url,
            GRPC_PORT="0",
            METRICS_PORT="0",
            READY_FILE=str(ready_file),
            NOTIFIER_STREAM_KEY=f"test:changes:process:{uuid.uuid4().hex}",
            SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
            AZURE_TENANT_ID=emulator["tenantId"],
            AZURE_AUTHORITY_HOST=emulator["url"],
            AZURE_CA_BUNDLE=emulator["caFile"],
            NOTIFIER_SUBSCRIBERS_FILE=str(subscribers),
            NOTIFIER_SUBSCRIBER_POLL_SECONDS="0.2",
            NOTIFIER_WEBHOOK_BACKOFF_SECONDS="30",
            NOTIFIER_WEBHOOK_BACKOFF_MAX_SECONDS="30",
        ),
        ready_file=ready_file,
        cwd=ROOT,
    ).start()
    try:
        ready = process.wait_ready(timeout=60)
        reader = _token(emulator, ["Profiles.Read"])
        manager = _token(emulator, ["Subscribers.Manage"])
        stopped_in = asyncio.run(_exercise(process, ready, reader, manager))
    finally:
        code = process.stop(timeout=GRACE_SECONDS + 30)
    assert code == 0, process.tail()
    assert "Traceback" not in process.tail(400)
    # Open streams were ended, not waited for: far less than the grace period.
    assert stopped_in < GRACE_SECONDS / 2


async def _exercise(
    process: ManagedProcess,
    ready: dict[str, Any],
    reader: tuple[tuple[str, str], ...],
    manager: tuple[tuple[str, str], ...],
) -> float:
    async with grpc.aio.insecure_channel(ready["address"]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        stub = notifier_pb2_grpc.LobNotifierStub(channel)

        # Managing subscribers needs its own role; reading them does not.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PutSubscriber(
                notifier_pb2.PutSubscriberRequest(name="reports"), metadata=reader, timeout=30
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "Subscribers.Manage" in (caught.value.details() or "")
        await stub.PutSubscriber(
            notifier_pb2.PutSubscriberRequest(name="reports"), metadata=manager, timeout=30
        )
        listed = await stub.ListSubscribers(
            notifier_pb2.ListSubscribersRequest(), metadata=reader, timeout=30
        )
        assert [s.name for s in listed.subscribers] == ["crm", "reports"]  # crm: from the file

        metrics_url = f"http://127.0.0.1:{ready['metricsPort']}/metrics"
        async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                text = (await http.get(metrics_url)).text
                if 'profilesync_notifier_subscriber_lag_events{subscriber="crm"}' in text:
                    break
                assert time.monotonic() < deadline, "subscriber gauges never appeared"
                await asyncio.sleep(0.1)

        stream = stub.StreamChanges(notifier_pb2.StreamChangesRequest(), metadata=reader)
        first = await asyncio.wait_for(stream.read(), timeout=30)
        assert first.heartbeat

        started = time.monotonic()
        process.signal(15)  # SIGTERM
        assert await asyncio.wait_for(stream.read(), timeout=GRACE_SECONDS) == grpc.aio.EOF
        # The process exits on its own; the caller's stop() only waits for it.
        await asyncio.to_thread(process.process.wait, GRACE_SECONDS + 30)  # type: ignore[union-attr]
        return time.monotonic() - started


def test_missing_redis_url_exits_2_naming_the_variable() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "services.lob_notifier"],
        env=_environment(GRPC_PORT="0"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "REDIS_URL" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert len(finished.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"NOTIFIER_MAX_EVENTS": "lots"}, "NOTIFIER_MAX_EVENTS"),
        ({"NOTIFIER_SUBSCRIBERS_FILE": "{broken}"}, "NOTIFIER_SUBSCRIBERS_FILE"),
    ],
)
def test_a_malformed_setting_exits_2_naming_the_variable(
    redis_url: str, tmp_path: pathlib.Path, overrides: dict[str, str], named: str
) -> None:
    if "NOTIFIER_SUBSCRIBERS_FILE" in overrides:
        broken = tmp_path / "subscribers.json"
        broken.write_text(overrides["NOTIFIER_SUBSCRIBERS_FILE"])
        overrides = {"NOTIFIER_SUBSCRIBERS_FILE": str(broken)}
    finished = subprocess.run(
        [sys.executable, "-m", "services.lob_notifier"],
        env=_environment(REDIS_URL=redis_url, GRPC_PORT="0", **overrides),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert named in finished.stderr
    assert "Traceback" not in finished.stderr
