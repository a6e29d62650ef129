"""The Graph emulator as a process of its own, for tests and benchmarks.

    with running_emulator(workdir, users=5000, extra=["--seed", "3"]) as ready:
        ready["url"], ready["caFile"], ready["authority"], ready["tenantId"]

It listens on a free loopback port, keeps its state (TLS files, signing key) in
`workdir/state` unless `state_dir` says otherwise, writes its log to `workdir`
and is stopped by process id when the block ends.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from devtools.processes import ManagedProcess, python_module

__all__ = ["emulator_process", "running_emulator"]

ROOT = pathlib.Path(__file__).resolve().parents[2]


def emulator_process(
    workdir: pathlib.Path,
    *,
    users: int,
    extra: Sequence[str] = (),
    state_dir: pathlib.Path | None = None,
    name: str = "emulator",
    tenant_mix: str = "none",
) -> ManagedProcess:
    """Not started yet: `.start()` then `.wait_ready(timeout)` for its ready info.

    Every user is a licensed member with a profile unless `tenant_mix` says otherwise
    ("realistic", or shares as `--tenant-mix` takes them)."""
    ready_file = workdir / f"{name}.ready.json"
    argv = python_module(
        "devtools.graph_emulator",
        *("--users", str(users), "--port", "0"),
        *("--state-dir", str(state_dir or workdir / "state")),
        *("--ready-file", str(ready_file)),
        *("--tenant-mix", tenant_mix),
        *extra,
    )
    return ManagedProcess(
        name,
        argv,
        log_dir=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        ready_file=ready_file,
        cwd=ROOT,
    )


@contextmanager
def running_emulator(
    workdir: pathlib.Path,
    *,
    users: int = 1,
    extra: Sequence[str] = (),
    state_dir: pathlib.Path | None = None,
    name: str = "emulator",
    timeout: float = 120,
    tenant_mix: str = "none",
) -> Iterator[dict[str, Any]]:
    """The emulator's ready info while it runs (a large tenant takes seconds to build)."""
    process = emulator_process(
        workdir, users=users, extra=extra, state_dir=state_dir, name=name, tenant_mix=tenant_mix
    ).start()
    try:
        yield process.wait_ready(timeout=timeout)
    finally:
        process.stop()
