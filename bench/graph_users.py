"""Users of the emulator's tenant, read through Graph as any Graph client would."""

from __future__ import annotations

from typing import Any

from services.devstack.lob_client import emulator_http, emulator_token

__all__ = ["GRAPH_AUDIENCE", "graph_users"]

GRAPH_AUDIENCE = "https://graph.microsoft.com"


def graph_users(emulator_url: str, ca_file: str, count: int) -> list[dict[str, Any]]:
    """The first `count` users (at most 999: one page), each with id and userPrincipalName."""
    token = emulator_token(emulator_url, ca_file, roles=["User.Read.All"], audience=GRAPH_AUDIENCE)
    with emulator_http(emulator_url, ca_file) as client:
        response = client.get(
            "/v1.0/users",
            params={"$select": "id,userPrincipalName", "$top": str(count)},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        users: list[dict[str, Any]] = response.json()["value"]
    return users[:count]
