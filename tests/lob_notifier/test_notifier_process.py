"""`python -m services.lob_notifier` as a real process: health, SIGTERM, bad settings."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.processes import ManagedProcess
from services.lob_notifier.servicer import SERVICE_NAME

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(overrides)
    return env


def test_the_process_answers_health_checks_and_exits_cleanly_on_sigterm(
    redis_url: str, tmp_path: pathlib.Path
) -> None:
    ready_file = tmp_path / "notifier.ready.json"
    process = ManagedProcess(
        "lob_notifier",
        [sys.executable, "-m", "services.lob_notifier"],
        log_dir=tmp_path,
        env=_environment(
            REDIS_URL=redis_url,
            GRPC_PORT="0",
            READY_FILE=str(ready_file),
            NOTIFIER_STREAM_KEY="test:changes:process",
        ),
        ready_file=ready_file,
        cwd=ROOT,
    ).start()
    try:
        ready = process.wait_ready(timeout=30)
        with grpc.insecure_channel(f"127.0.0.1:{ready['port']}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE_NAME):
                answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        code = process.stop(timeout=20)
    assert code == 0, process.tail()
    assert "Traceback" not in process.tail(200)


def test_missing_redis_url_exits_2_naming_the_variable(tmp_path: pathlib.Path) -> None:
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


def test_a_malformed_setting_exits_2_naming_the_variable(redis_url: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "services.lob_notifier"],
        env=_environment(REDIS_URL=redis_url, GRPC_PORT="0", NOTIFIER_MAX_EVENTS="lots"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "NOTIFIER_MAX_EVENTS" in finished.stderr
    assert "Traceback" not in finished.stderr
