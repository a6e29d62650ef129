"""One stack for the whole end-to-end suite: separate processes, real
redis-server, real Envoy, the Graph emulator over TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.devstack.lob_client import LobClient
from devtools.devstack.stack import Stack, StackOptions


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(state_dir=tmp_path_factory.mktemp("stack"), users=40, seed=7)
    with Stack(options) as running:
        yield running


@pytest.fixture(scope="session")
def lob(stack: Stack) -> Iterator[LobClient]:
    with LobClient.on_stack(stack) as client:
        yield client


@pytest.fixture(scope="session")
def baseline_cursor(lob: LobClient) -> str:
    """A first sync has run and the LOB app has read its CREATED events."""
    run = lob.sync_and_wait()
    assert run["state"] == "SUCCEEDED", run
    events, cursor = lob.changes()
    assert len(events) == 40 and {e["kind"] for e in events} == {"CREATED"}
    return cursor
