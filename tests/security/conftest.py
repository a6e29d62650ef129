"""One real stack for the security suite, and an authority that can sign tokens
the emulator's token route will not issue (not yet valid, wrong tenant, no expiry).

Every token a test sends goes through `SENT_TOKENS`, every error body through
`ERROR_BODIES`: the leak test looks for both in everything the stack printed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from devtools.devstack.lob_client import LobClient, emulator_token
from devtools.devstack.stack import Stack, StackOptions
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, app_id_uri
from devtools.graph_emulator.signing_key import SigningKey, load_or_create_signing_key

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


@pytest.fixture(scope="session")
def security_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(state_dir=tmp_path_factory.mktemp("security-stack"), users=20, seed=5)
    with Stack(options) as running:
        yield running


@pytest.fixture(scope="session")
def authority(security_stack: Stack) -> Authority:
    tenant = str(security_stack.emulator["tenantId"])
    return Authority(
        key=load_or_create_signing_key(security_stack.state_dir / "graph_emulator"),
        issuer=f"{security_stack.emulator_url}/{tenant}/v2.0",
        tenant_id=tenant,
    )


def issue(stack: Stack, **claims: Any) -> str:
    """A token from the emulator's test route."""
    return sent(emulator_token(stack.emulator_url, stack.ca_file, **claims))


@pytest.fixture(scope="session")
def lob(security_stack: Stack) -> Iterator[LobClient]:
    client = LobClient(security_stack.gateway_url, issue(security_stack, roles=["Profiles.Read"]))
    yield client
    client.close()


@pytest.fixture(scope="session")
def synced_users(lob: LobClient) -> list[dict[str, Any]]:
    """Every user's profile, after a first sync."""
    run = lob.sync_and_wait()
    assert run["state"] == "SUCCEEDED", run
    events, _ = lob.changes()
    return [event["after"] for event in events]
