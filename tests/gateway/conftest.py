"""Fixtures for the gateway tests: one backend and one gateway per module."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from gateway_harness import DESCRIPTOR_SET, ROOT, Backend, start_gateway

from devtools.processes import ManagedProcess


@pytest.fixture(scope="session")
def descriptor_set() -> pathlib.Path:
    if not DESCRIPTOR_SET.is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py")], check=True)
    return DESCRIPTOR_SET


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    server = Backend().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gateway(
    backend: Backend, descriptor_set: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    process = start_gateway(backend.port, tmp_path_factory.mktemp("gateway"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(gateway: ManagedProcess) -> Iterator[httpx.Client]:
    # trust_env=False: a proxy configured on the machine must not sit in between.
    with httpx.Client(base_url=gateway.ready["url"], timeout=10.0, trust_env=False) as http:
        yield http
