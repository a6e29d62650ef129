"""Helpers shared by the Graph emulator tests."""

from __future__ import annotations

from typing import Any

import httpx

from devtools.graph_emulator.state import EmulatorState

BASE_URL = "https://127.0.0.1:8443"


async def mint(http: httpx.AsyncClient, **body: Any) -> str:
    response = await http.post("/_emulator/token", json=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def first_user(state: EmulatorState) -> dict[str, Any]:
    users, _ = state.store.page_after(None, 1)
    return users[0]


def nth_user(state: EmulatorState, index: int) -> dict[str, Any]:
    users, _ = state.store.page_after(None, index + 1)
    return users[index]


def assert_graph_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """Graph's error shape: {"error": {"code", "message", "innerError": {"date",
    "request-id", "client-request-id"}}}, with request-id echoed as a header.
    https://learn.microsoft.com/en-us/graph/errors
    """
    assert response.status_code == status, response.text
    body = response.json()
    error = body["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert response.headers["request-id"] == error["innerError"]["request-id"]
    if code is not None:
        assert error["code"] == code, body
