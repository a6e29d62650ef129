"""What a fuzz test aims at: the running stack and the tokens that get past authorisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtools.devstack.stack import Stack


@dataclass(frozen=True)
class FuzzTarget:
    stack: Stack
    app_token: str
    user_token: str
    user: dict[str, Any]

    @property
    def base_url(self) -> str:
        return self.stack.gateway_url

    def headers(self, operation_id: str = "") -> dict[str, str]:
        token = self.user_token if operation_id == "UpdateProfile" else self.app_token
        return {"Authorization": f"Bearer {token}"}
