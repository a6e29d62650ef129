"""The tokens the security suite sends, and where it keeps what the leak test looks for.

Every token a test sends goes through `SENT_TOKENS`, every error body through
`ERROR_BODIES`: the leak test looks for both in everything the stack printed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from devtools.devstack.lob_client import emulator_token
from devtools.devstack.stack import Stack
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, app_id_uri
from devtools.graph_emulator.signing_key import SigningKey

SENT_TOKENS: set[str] = set()
ERROR_BODIES: list[str] = []


@dataclass(frozen=True)
class Authority:
    """Signs tokens with the emulator's own key, as the tenant's authority would."""

    key: SigningKey
    issuer: str
    tenant_id: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": app_id_uri(DEFAULT_CLIENT_ID),
            "iss": self.issuer,
            "tid": self.tenant_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "azp": str(uuid.uuid4()),
            "oid": str(uuid.uuid4()),
            "sub": str(uuid.uuid4()),
            "idtyp": "app",
            "roles": ["Profiles.Read"],
            "ver": "2.0",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any]) -> str:
        return sent(
            jwt.encode(
                claims, self.key.private_key, algorithm="RS256", headers={"kid": self.key.kid}
            )
        )


def sent(token: str) -> str:
    SENT_TOKENS.add(token)
    return token


def issue(stack: Stack, **claims: Any) -> str:
    """A token from the emulator's test route."""
    return sent(emulator_token(stack.emulator_url, stack.ca_file, **claims))
