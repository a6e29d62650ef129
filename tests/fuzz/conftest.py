"""One real stack for the fuzz suite: every process, real redis-server, Envoy, and the
Graph emulator over TLS, with a first sync done so there is data to read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fuzz_recorder import RECORDER
from fuzz_target import FuzzTarget

from devtools.devstack.lob_client import LobClient, emulator_token
from devtools.devstack.stack import Stack, StackOptions

# Every app role the API knows, so fuzzed calls get past authorisation and reach the
# handlers; the auth suite (tests/security) checks the refusals.
ALL_APP_ROLES = ["Profiles.Read", "Profiles.Sync", "Subscribers.Manage"]


@pytest.fixture(scope="session")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(state_dir=tmp_path_factory.mktemp("fuzz-stack"), users=30, seed=11)
    with Stack(options) as running:
        yield running
        RECORDER.write(running.state_dir / "fuzz-summary.json")


@pytest.fixture(scope="session")
def fuzz_target(fuzz_stack: Stack) -> FuzzTarget:
    app_token = RECORDER.token(
        emulator_token(fuzz_stack.emulator_url, fuzz_stack.ca_file, roles=ALL_APP_ROLES)
    )
    lob = LobClient(fuzz_stack.gateway_url, app_token)
    try:
        run = lob.sync_and_wait()
        assert run["state"] == "SUCCEEDED", run
        events, _ = lob.changes()
    finally:
        lob.close()
    user = events[0]["after"]
    user_token = RECORDER.token(
        emulator_token(fuzz_stack.emulator_url, fuzz_stack.ca_file, user=user["userPrincipalName"])
    )
    return FuzzTarget(fuzz_stack, app_token, user_token, user)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RECORDER.cases:
        terminalreporter.section("fuzz summary")
        for line in RECORDER.lines():
            terminalreporter.write_line(line)
