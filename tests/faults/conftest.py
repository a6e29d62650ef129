"""Fixtures shared by the fault tests: each builds its own whole stack (its
options are the point of the test), then talks to it as the LOB app does."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devtools.devstack.lob_client import LobClient
from devtools.devstack.stack import Stack


@pytest.fixture
def lob_for() -> Iterator[Callable[[Stack], LobClient]]:
    """Makes the LOB app's client (its own app token, `Profiles.Read`) for a
    stack; every client made is closed after the test."""
    clients: list[LobClient] = []

    def make(stack: Stack) -> LobClient:
        clients.append(LobClient.on_stack(stack))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
