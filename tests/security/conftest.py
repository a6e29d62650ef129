"""One real stack for the security suite, and an authority that can sign tokens
the emulator's token route will not issue (not yet valid, wrong tenant, no expiry);
the tokens themselves are made in security_tokens.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from security_tokens import Authority, issue

from devtools.devstack.lob_client import LobClient
from devtools.devstack.stack import Stack, StackOptions
from devtools.graph_emulator.signing_key import load_or_create_signing_key


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
