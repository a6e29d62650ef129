"""A small REST client for the gateway, as a LOB app would use it (demo and tests)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from services.common.tls import client_ssl_context

if TYPE_CHECKING:
    from devtools.devstack.stack import Stack

__all__ = ["LobClient", "edit_in_delve", "emulator_http", "emulator_token"]


def emulator_http(emulator_url: str, ca_file: str) -> httpx.Client:
    """An HTTPS client for the emulator, trusting its generated CA."""
    return httpx.Client(base_url=emulator_url, verify=client_ssl_context(ca_file), trust_env=False)


def emulator_token(emulator_url: str, ca_file: str, **claims: Any) -> str:
    """A token from the emulator's test route: `user=upn` (delegated) or `roles=[...]` (app)."""
    with emulator_http(emulator_url, ca_file) as client:
        response = client.post("/_emulator/token", json=claims)
        response.raise_for_status()
        return str(response.json()["access_token"])


def edit_in_delve(emulator_url: str, ca_file: str, user_id: str, **fields: Any) -> None:
    """An edit made outside the LOB app (as in Delve), through the emulator's admin API."""
    with emulator_http(emulator_url, ca_file) as client:
        client.post(f"/_emulator/users/{user_id}/edit", json=fields).raise_for_status()


class LobClient:
    def __init__(self, gateway_url: str, token: str) -> None:
        self.token = token
        self.http = httpx.Client(
            base_url=gateway_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=90,
            trust_env=False,
        )

    @classmethod
    def on_stack(cls, stack: Stack, *roles: str) -> LobClient:
        """A client of `stack`'s gateway with an app token for `roles` (Profiles.Read unless
        named), issued by the stack's emulator."""
        claims = list(roles) or ["Profiles.Read"]
        return cls(
            stack.gateway_url, emulator_token(stack.emulator_url, stack.ca_file, roles=claims)
        )

    def __enter__(self) -> LobClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def sync_and_wait(self, timeout: float = 600) -> dict[str, Any]:
        """POST /v1/syncs, then polls GET /v1/syncs/{id} until the run ends."""
        response = self.http.post("/v1/syncs", json={})
        response.raise_for_status()
        return self.wait_for_run(response.json(), timeout)

    def wait_for_run(self, run: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
        """Polls GET /v1/syncs/{id} until `run` (as last seen) is no longer RUNNING."""
        deadline = time.monotonic() + timeout
        while run["state"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"sync {run['runId']} still running after {timeout:g} s")
            time.sleep(0.2)
            response = self.http.get(f"/v1/syncs/{run['runId']}")
            response.raise_for_status()
            run = response.json()
        return run

    def changes(
        self, after_cursor: str = "", page_size: int = 1000
    ) -> tuple[list[dict[str, Any]], str]:
        """Every event after the cursor (all pages) and the cursor to continue from."""
        events: list[dict[str, Any]] = []
        cursor = after_cursor
        while True:
            params: dict[str, Any] = {"pageSize": page_size}
            if cursor:
                params["afterCursor"] = cursor
            response = self.http.get("/v1/changes", params=params)
            response.raise_for_status()
            page = response.json()
            events.extend(page.get("events", []))
            if not page.get("events"):
                return events, page.get("nextCursor", cursor)
            cursor = page["nextCursor"]

    def bootstrap(self, page_size: int = 1000) -> tuple[list[dict[str, Any]], str]:
        """Every profile of the last committed sync (GET /v1/profiles, all pages)
        and the cursor to follow changes from afterwards."""
        profiles: list[dict[str, Any]] = []
        params: dict[str, Any] = {"pageSize": page_size}
        while True:
            response = self.http.get("/v1/profiles", params=params)
            response.raise_for_status()
            page = response.json()
            profiles.extend(page.get("profiles", []))
            if not page.get("nextPageToken"):
                return profiles, str(page["changesCursor"])
            params["pageToken"] = page["nextPageToken"]

    def update_profile(self, user_id: str, user_token: str, **fields: Any) -> httpx.Response:
        return self.http.patch(
            f"/v1/profiles/{user_id}",
            json=fields,
            headers={"Authorization": f"Bearer {user_token}"},
        )
