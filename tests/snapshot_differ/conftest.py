"""Fixtures of the differ tests: the harness (scripted extender, real notifier,
real Redis), and an Entra authority for `python -m services.snapshot_differ`
processes, which fetch the app's token before calling the other services."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.common.processes import ManagedProcess, python_module

from .harness import DifferHarness


@pytest.fixture
async def harness(
    redis_client: aioredis.Redis, redis_url: str, tmp_path: pathlib.Path
) -> AsyncIterator[DifferHarness]:
    async with DifferHarness(redis_client, redis_url, tmp_path / "store") as h:
        yield h


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The Graph emulator, here only as the token authority; its ready info."""
    workdir = tmp_path_factory.mktemp("authority")
    ready = workdir / "ready.json"
    process = ManagedProcess(
        "emulator",
        python_module(
            "services.graph_emulator",
            "--users",
            "1",
            "--port",
            "0",
            "--state-dir",
            str(workdir / "state"),
            "--ready-file",
            str(ready),
        ),
        log_dir=workdir,
        ready_file=ready,
        cwd=pathlib.Path(__file__).resolve().parents[2],
    ).start()
    try:
        yield process.wait_ready(timeout=120)
    finally:
        process.stop()
