"""Starting and stopping the gateway process."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import httpx
import pytest
from gateway_harness import ROOT, Backend, gateway_env, start_gateway


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gateway_and_envoy(
    backend: Backend, descriptor_set: pathlib.Path, tmp_path: pathlib.Path, signum: int
) -> None:
    process = start_gateway(backend.port, tmp_path)
    try:
        ready = process.ready
        assert set(ready) >= {"url", "port", "adminUrl", "envoyPid", "pid"}
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}"
        with httpx.Client(trust_env=False, timeout=10) as http:
            assert http.get(f"{ready['url']}/healthz").status_code == 200
            assert http.get(f"{ready['adminUrl']}/ready").status_code == 200
        envoy_pid = int(ready["envoyPid"])
        assert pid_exists(envoy_pid)
        process.signal(signum)
        assert process.process is not None
        assert process.process.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while pid_exists(envoy_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_exists(envoy_pid)
        # The per-instance config folder is cleaned up.
        assert list((tmp_path / "state").iterdir()) == []
    finally:
        process.stop()


def test_two_gateways_run_side_by_side(
    backend: Backend, descriptor_set: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    first = start_gateway(backend.port, tmp_path / "a")
    try:
        second = start_gateway(backend.port, tmp_path / "b")
        try:
            assert first.ready["port"] != second.ready["port"]
            with httpx.Client(trust_env=False, timeout=10) as http:
                for process in (first, second):
                    response = http.get(f"{process.ready['url']}/v1/profiles/u1")
                    assert response.status_code == 200
        finally:
            assert second.stop() == 0
    finally:
        assert first.stop() == 0


@pytest.mark.parametrize(
    ("missing", "overrides"),
    [
        ("EXTENDER_ADDR", {"EXTENDER_ADDR": ""}),
        ("NOTIFIER_ADDR", {"NOTIFIER_ADDR": "no-port"}),
        ("GATEWAY_PORT", {"GATEWAY_PORT": "http"}),
        ("ENVOY_PATH", {"ENVOY_PATH": "/nonexistent/envoy"}),
    ],
)
def test_bad_setting_exits_2_naming_the_variable(
    tmp_path: pathlib.Path, missing: str, overrides: dict[str, str]
) -> None:
    env = {**gateway_env(1, tmp_path), **overrides}
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert missing in lines[0]
