"""Fixtures for the Graph emulator tests: an in-process app for route tests, and helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from emulator_helpers import BASE_URL, bearer, mint

from devtools.graph_emulator.app import create_app
from devtools.graph_emulator.defaults import GRAPH_RESOURCE
from devtools.graph_emulator.signing_key import SigningKey, generate_signing_key
from devtools.graph_emulator.state import EmulatorState


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    # RSA key generation is the slowest part of building a state; share one per session.
    return generate_signing_key()


@pytest.fixture
def state(signing_key: SigningKey) -> EmulatorState:
    return EmulatorState.build(users=250, seed=7, signing_key=signing_key)


@pytest.fixture
async def client(state: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@pytest.fixture
async def app_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Headers of a Graph application token with User.Read.All."""
    return bearer(await mint(client, roles=["User.Read.All"], audience=GRAPH_RESOURCE))
