"""End to end against the CLI: real TLS, HTTP/2, MSAL, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import msal
import pytest
import requests
from emulator_process import ROOT, EmulatorProcess, start_emulator, trust

from services.graph_emulator.defaults import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT_ID,
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    running = start_emulator(tmp_path_factory.mktemp("emulator"), "--users", "250", "--seed", "3")
    try:
        yield running
    finally:
        assert running.stop() == 0


def msal_app(
    ready: dict[str, str], session: requests.Session
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        DEFAULT_CLIENT_ID,
        client_credential=DEFAULT_CLIENT_SECRET,
        authority=ready["authority"],
        instance_discovery=False,
        http_client=session,
    )


@pytest.fixture
def session(emulator: EmulatorProcess) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.verify = emulator.ready["caFile"]
        http.trust_env = False
        yield http


def test_ready_file(emulator: EmulatorProcess) -> None:
    ready = emulator.ready
    assert ready["url"].startswith("https://127.0.0.1:")
    port = int(ready["url"].rsplit(":", 1)[1])
    assert 0 < port < 65536
    assert Path(ready["caFile"]).is_absolute() and Path(ready["caFile"]).exists()
    assert ready["tenantId"] == DEFAULT_TENANT_ID and ready["clientId"] == DEFAULT_CLIENT_ID
    assert ready["authority"] == f"{ready['url']}/{DEFAULT_TENANT_ID}"
    assert ready["pid"] == emulator.process.pid


def test_msal_client_credentials(emulator: EmulatorProcess, session: requests.Session) -> None:
    app = msal_app(emulator.ready, session)
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    # MSAL serves the second call from its cache.
    again = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert again["access_token"] == result["access_token"]
    assert again.get("token_source") == "cache"

    with httpx.Client(http2=True, verify=trust(emulator), trust_env=False) as http:
        response = http.get(
            f"{emulator.ready['url']}/v1.0/users?$top=999",
            headers={"Authorization": f"Bearer {result['access_token']}"},
        )
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert len(response.json()["value"]) == 250


def test_msal_on_behalf_of(emulator: EmulatorProcess, session: requests.Session) -> None:
    url = emulator.ready["url"]
    with httpx.Client(verify=trust(emulator), trust_env=False) as http:
        app_token = msal_app(emulator.ready, session).acquire_token_for_client(
            ["https://graph.microsoft.com/.default"]
        )["access_token"]
        user = http.get(
            f"{url}/v1.0/users?$top=1", headers={"Authorization": f"Bearer {app_token}"}
        ).json()["value"][0]
        user_token = http.post(
            f"{url}/_emulator/token", json={"user": user["userPrincipalName"]}
        ).json()["access_token"]
        result = msal_app(emulator.ready, session).acquire_token_on_behalf_of(
            user_token, ["https://graph.microsoft.com/.default"]
        )
        assert "access_token" in result, result
        graph = {"Authorization": f"Bearer {result['access_token']}"}
        response = http.patch(f"{url}/v1.0/me", json={"skills": ["Crème brûlée"]}, headers=graph)
        assert response.status_code == 204, response.text
        response = http.get(f"{url}/v1.0/users/{user['id']}?$select=skills", headers=graph)
        assert response.json()["skills"] == ["Crème brûlée"]


def test_paging_over_the_wire(emulator: EmulatorProcess, session: requests.Session) -> None:
    token = msal_app(emulator.ready, session).acquire_token_for_client(
        ["https://graph.microsoft.com/.default"]
    )["access_token"]
    ids: list[str] = []
    next_url: str | None = f"{emulator.ready['url']}/v1.0/users?$top=100"
    with httpx.Client(http2=True, verify=trust(emulator), trust_env=False) as http:
        while next_url:
            body = http.get(next_url, headers={"Authorization": f"Bearer {token}"}).json()
            ids.extend(u["id"] for u in body["value"])
            next_url = body.get("@odata.nextLink")
    assert len(ids) == len(set(ids)) == 250


def test_logs_are_json_lines_without_secrets(
    emulator: EmulatorProcess, session: requests.Session
) -> None:
    token = msal_app(emulator.ready, session).acquire_token_for_client(
        ["https://graph.microsoft.com/.default"]
    )["access_token"]
    lines = emulator.log_lines()
    assert lines
    entries = [json.loads(line) for line in lines]
    assert any(e["msg"] == "listening" for e in entries)
    assert any(e.get("path", "").endswith("/oauth2/v2.0/token") for e in entries)
    text = "\n".join(lines)
    assert DEFAULT_CLIENT_SECRET not in text
    assert token not in text and token.split(".")[1] not in text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(tmp_path: Path, signum: int) -> None:
    running = start_emulator(tmp_path, "--users", "5")
    with httpx.Client(verify=trust(running), trust_env=False) as http:
        assert http.get(f"{running.ready['url']}/_emulator/health").status_code == 200
    assert running.stop(signum) == 0
    assert not running.ready_file.exists()
    assert any(json.loads(line)["msg"] == "stopped" for line in running.log_lines())


def test_state_dir_is_reused(tmp_path: Path) -> None:
    first = start_emulator(tmp_path, "--users", "1")
    ca = Path(first.ready["caFile"]).read_bytes()
    assert first.stop() == 0
    second = start_emulator(tmp_path, "--users", "1")
    try:
        assert Path(second.ready["caFile"]).read_bytes() == ca
    finally:
        assert second.stop() == 0


def test_busy_port_fails_with_exit_code(emulator: EmulatorProcess, tmp_path: Path) -> None:
    port = emulator.ready["url"].rsplit(":", 1)[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.graph_emulator",
            "--port",
            port,
            "--users",
            "1",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert any(
        json.loads(line)["msg"] == "cannot listen" for line in result.stdout.decode().splitlines()
    )


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.graph_emulator", "--tenant-id", "not-a-guid"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and b"not a GUID" in result.stderr
