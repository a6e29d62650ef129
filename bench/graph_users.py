"""Users of the emulator's tenant, read through Graph as any Graph client would."""

from __future__ import annotations

from typing import Any

from devtools.devstack.lob_client import emulator_http, emulator_token

__all__ = ["GRAPH_AUDIENCE", "graph_users"]

GRAPH_AUDIENCE = "https://graph.microsoft.com"


def graph_users(emulator_url: str, ca_file: str, count: int) -> list[dict[str, Any]]:
    """The first `count` users, each with id and userPrincipalName (pages of up to 999)."""
    token = emulator_token(emulator_url, ca_file, roles=["User.Read.All"], audience=GRAPH_AUDIENCE)
    users: list[dict[str, Any]] = []
    with emulator_http(emulator_url, ca_file) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        url: str | None = "/v1.0/users"
        params: dict[str, str] | None = {
            "$select": "id,userPrincipalName",
            "$top": str(min(count, 999)),
        }
        while url and len(users) < count:
            response = client.get(url, params=params)
            response.raise_for_status()
            page = response.json()
            users.extend(page["value"])
            url, params = page.get("@odata.nextLink"), None  # the link carries the query
    return users[:count]
