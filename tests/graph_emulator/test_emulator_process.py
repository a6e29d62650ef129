"""End to end against the CLI: real TLS, HTTP/2, MSAL, signals.

MSAL flows follow the Microsoft identity platform documents:
client credentials https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
on-behalf-of https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-on-behalf-of-flow,
password https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import msal
import pytest
import requests
from emulator_process import ROOT, EmulatorProcess, start_emulator, trust

from devtools.graph_emulator.defaults import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT_ID,
    DEFAULT_USER_PASSWORD,
)

LOAD_CLIENT = Path(__file__).with_name("emulator_load_client.py")


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


def test_an_idle_keep_alive_connection_does_not_hold_the_emulator_after_sigterm(
    tmp_path: Path,
) -> None:
    # HTTP/2 clients (httpx, MSAL's session) keep their connection open between requests.
    running = start_emulator(tmp_path, "--users", "5")
    with httpx.Client(verify=trust(running), trust_env=False, http2=True) as held_open:
        assert held_open.get(f"{running.ready['url']}/_emulator/health").status_code == 200
        assert running.stop(signal.SIGTERM, timeout=10) == 0
    messages = [json.loads(line)["msg"] for line in running.log_lines()]
    assert "connections still open after the grace period were closed" in messages
    assert messages[-1] == "stopped"


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
            "devtools.graph_emulator",
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
        [sys.executable, "-m", "devtools.graph_emulator", "--tenant-id", "not-a-guid"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and b"not a GUID" in result.stderr


class RealmPortSession(requests.Session):
    """MSAL looks the user realm up on the authority's host *without its port*
    (``https://127.0.0.1/common/userrealm/...``); send that lookup to the emulator's port."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(str(url))
        if parts.path.startswith("/common/userrealm/") and parts.port is None:
            url = f"{self.base_url}{parts.path}?{parts.query}"
        return super().request(method, url, *args, **kwargs)


def realm_session(running: EmulatorProcess) -> RealmPortSession:
    http = RealmPortSession(running.ready["url"])
    http.verify = running.ready["caFile"]
    http.trust_env = False
    return http


def test_msal_password_grant(emulator: EmulatorProcess, session: requests.Session) -> None:
    """MSAL's username/password flow: user realm discovery, then the password grant."""
    with httpx.Client(verify=trust(emulator), trust_env=False) as http:
        app_token = msal_app(emulator.ready, session).acquire_token_for_client(
            ["https://graph.microsoft.com/.default"]
        )["access_token"]
        user = http.get(
            f"{emulator.ready['url']}/v1.0/users?$top=1",
            headers={"Authorization": f"Bearer {app_token}"},
        ).json()["value"][0]
    app = msal_app(emulator.ready, realm_session(emulator))
    result = app.acquire_token_by_username_password(
        user["userPrincipalName"], DEFAULT_USER_PASSWORD, ["User.Read"]
    )
    assert "access_token" in result, result
    assert result["id_token_claims"]["oid"] == user["id"]
    wrong = app.acquire_token_by_username_password(
        user["userPrincipalName"], "not-the-password", ["User.Read"]
    )
    assert wrong["error"] == "invalid_grant" and 50126 in wrong["error_codes"]


def test_cli_sets_quotas_roles_and_password(tmp_path: Path) -> None:
    running = start_emulator(
        tmp_path,
        "--users",
        "3",
        "--quota",
        "7",
        "--write-quota",
        "2",
        "--app-roles",
        "Profiles.Read,Reports.Export",
        "--user-password",
        "Another-Pw-1",
        "--profile-latency-median-ms",
        "300",
        "--profile-latency-p99-ms",
        "1500",
    )
    try:
        url = running.ready["url"]
        with httpx.Client(verify=trust(running), trust_env=False) as http:
            config = http.get(f"{url}/_emulator/config").json()
            assert (config["quotaPer10s"], config["writeQuotaPer150s"]) == (7, 2)
            assert (config["profileLatencyMedianMs"], config["profileLatencyP99Ms"]) == (300, 1500)
        with realm_session(running) as http_session:
            app = msal_app(running.ready, http_session)
            own = app.acquire_token_for_client([f"api://{DEFAULT_CLIENT_ID}/.default"])
            claims = jwt.decode(own["access_token"], options={"verify_signature": False})
            assert claims["roles"] == ["Profiles.Read", "Reports.Export"]
            graph = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
            with httpx.Client(verify=trust(running), trust_env=False) as http:
                upn = http.get(
                    f"{url}/v1.0/users?$top=1&$select=userPrincipalName",
                    headers={"Authorization": f"Bearer {graph['access_token']}"},
                ).json()["value"][0]["userPrincipalName"]
            signed_in = app.acquire_token_by_username_password(upn, "Another-Pw-1", ["User.Read"])
            assert "access_token" in signed_in, signed_in
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--quota", "-1"),
        ("--quota", "lots"),
        ("--write-quota", "99999999999"),
        ("--app-roles", "Profiles Read"),
        ("--user-password", ""),
        ("--profile-latency-median-ms", "60001"),
        ("--profile-latency-p99-ms", "soon"),
        # A p99 below the median (0 here) is no distribution.
        ("--profile-latency-median-ms", "300"),
    ],
)
def test_bad_cli_values_are_refused(args: tuple[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.graph_emulator", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert args[0].encode() in result.stderr


@pytest.mark.parametrize("http2", [False, True])
def test_dropped_connections(emulator: EmulatorProcess, http2: bool) -> None:
    """dropRate cuts the connection after the work is done: the client sees a transport
    error, never a status, while the write has happened."""
    url = emulator.ready["url"]
    with httpx.Client(http2=http2, verify=trust(emulator), trust_env=False) as http:
        app_token = http.post(
            f"{url}/_emulator/token",
            json={"roles": ["User.Read.All"], "audience": "https://graph.microsoft.com"},
        ).json()["access_token"]
        user = http.get(
            f"{url}/v1.0/users?$top=1", headers={"Authorization": f"Bearer {app_token}"}
        ).json()["value"][0]
        user_token = http.post(
            f"{url}/_emulator/token",
            json={"user": user["userPrincipalName"], "audience": "https://graph.microsoft.com"},
        ).json()["access_token"]
        before = http.get(f"{url}/_emulator/stats").json()["droppedConnections"]
        http.put(f"{url}/_emulator/config", json={"dropRate": 1.0})
        try:
            with pytest.raises(httpx.TransportError):
                http.patch(
                    f"{url}/v1.0/me",
                    json={"interests": [f"Dropped over HTTP/{2 if http2 else 1}"]},
                    headers={"Authorization": f"Bearer {user_token}"},
                )
        finally:
            with httpx.Client(verify=trust(emulator), trust_env=False) as admin:
                admin.put(f"{url}/_emulator/config", json={"dropRate": 0.0})
                stats = admin.get(f"{url}/_emulator/stats").json()
                stored = admin.get(f"{url}/_emulator/users/{user['id']}").json()
    assert stats["droppedConnections"] == before + 1
    assert stored["interests"] == [f"Dropped over HTTP/{2 if http2 else 1}"]
    # The emulator keeps serving, and logs no traceback for a cut made on purpose.
    assert not any("Traceback" in line for line in emulator.log_lines())


def test_budget_is_shared_by_client_processes(tmp_path: Path) -> None:
    """Several processes of one app (say, extender replicas), each with its own token and
    connection, spend one budget: together they never get more than the quota in any
    10 s window, and each of them is throttled."""
    running = start_emulator(tmp_path, "--users", "40", "--quota", "150")
    try:
        url, ca = running.ready["url"], running.ready["caFile"]
        with requests.Session() as http_session:
            http_session.verify = ca
            http_session.trust_env = False
            tokens = [
                msal_app(running.ready, http_session).acquire_token_for_client(
                    ["https://graph.microsoft.com/.default"]
                )["access_token"]
                for _ in range(3)
            ]
        assert len(set(tokens)) == 3
        with httpx.Client(verify=trust(running), trust_env=False) as http:
            ids = [
                u["id"]
                for u in http.get(
                    f"{url}/v1.0/users?$top=20&$select=id",
                    headers={"Authorization": f"Bearer {tokens[0]}"},
                ).json()["value"]
            ]
            http.delete(f"{url}/_emulator/stats")
            clients = [
                subprocess.Popen(
                    [sys.executable, str(LOAD_CLIENT), url, ca, token, "2", *ids],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    cwd=ROOT,
                    text=True,
                )
                for token in tokens
            ]
            for client in clients:  # all connected before any starts
                assert client.stdout is not None and client.stdout.readline() == "ready\n"
            started = time.monotonic()
            for client in clients:
                assert client.stdin is not None
                client.stdin.write("go\n")
                client.stdin.flush()
            results = []
            for client in clients:
                out, _ = client.communicate(timeout=120)
                assert client.returncode == 0
                results.append(Counter({int(k): v for k, v in json.loads(out).items()}))
            windows = 1 + int((time.monotonic() - started) // 10)
            stats = http.get(f"{url}/_emulator/stats").json()
        assert all(result[429] > 0 for result in results)
        ok = sum(result[200] for result in results)
        # The traffic spans `windows` 10 s windows at most; each admits 150 at most.
        assert 0 < ok <= 150 * windows
        assert stats["resourceUnits"] == ok
        assert stats["peakResourceUnitsPer10s"] <= 150
    finally:
        assert running.stop() == 0


async def test_a_busy_http2_connection_stays_open(emulator: EmulatorProcess) -> None:
    """More than a thousand requests, many in flight, on one HTTP/2 connection: none is cut
    off (Graph keeps busy connections open; Hypercorn's default would close it)."""
    url = emulator.ready["url"]
    async with httpx.AsyncClient(
        base_url=url, http2=True, verify=trust(emulator), trust_env=False, timeout=60
    ) as http:
        token = (
            await http.post(
                "/_emulator/token",
                json={"roles": ["User.Read.All"], "audience": "https://graph.microsoft.com"},
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        await http.put("/_emulator/config", json={"quotaPer10s": 1_000_000})
        user_id = (await http.get("/v1.0/users?$top=1", headers=headers)).json()["value"][0]["id"]
        semaphore = asyncio.Semaphore(25)

        async def one() -> tuple[int, str]:
            async with semaphore:
                response = await http.get(f"/v1.0/users/{user_id}?$select=id", headers=headers)
                return response.status_code, response.http_version

        answers = await asyncio.gather(*(one() for _ in range(1_100)))
        await http.put("/_emulator/config", json={"quotaPer10s": 5_000})
    assert set(answers) == {(200, "HTTP/2")}
