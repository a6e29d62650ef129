"""Running `python -m services.snapshot_differ ...` as a real process against
a DifferHarness (its extender and notifier) and the test authority."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
from dataclasses import dataclass
from typing import Any

from harness import DifferHarness, skip_where_search_is_missing

from devtools.graph_emulator.defaults import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def run(self) -> dict[str, Any]:
        """The run printed as the last line of stdout."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"no output; stderr:\n{self.stderr}"
        return dict(json.loads(lines[-1]))

    @property
    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines on stdout (every line but the last)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()][:-1]
        return [json.loads(line) for line in lines]


def differ_env(harness: DifferHarness, authority: dict[str, Any], **extra: str) -> dict[str, str]:
    skip_where_search_is_missing(harness.redis)
    settings = harness.settings
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AZURE_TENANT_ID": str(authority["tenantId"]),
        "AZURE_CLIENT_ID": DEFAULT_CLIENT_ID,
        "AZURE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "AZURE_AUTHORITY_HOST": str(authority["url"]),
        "AZURE_CA_BUNDLE": str(authority["caFile"]),
        "EXTENDER_ADDR": settings.extender_addr,
        "NOTIFIER_ADDR": settings.notifier_addr,
        "REDIS_URL": harness.redis_url,
        "SNAPSHOT_STORE": str(harness.store_dir),
        "SNAPSHOT_PART_SIZE": str(settings.part_size),
        "PUBLISH_BATCH": str(settings.publish_batch),
        "COMPARE_BATCH": str(settings.compare_batch),
        "SNAPSHOT_RETENTION": str(settings.keep_snapshots),
        "SYNC_LOCK_TTL_SECONDS": str(settings.lock_ttl_seconds),
        "METRICS_PORT": "-1",
    }
    env.pop("DIFFER_CRASH_AT", None)
    env.update(extra)
    return env


async def run_differ(env: dict[str, str], *args: str, timeout: float = 180) -> Finished:
    """Runs the differ CLI to its end without blocking the event loop (the
    harness's servers answer it from this process)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.snapshot_differ",
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())
