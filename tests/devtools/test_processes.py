"""Processes of the stack: a stopped one leaves no ready file naming it."""

from __future__ import annotations

import json
import pathlib
import sys
import textwrap

from devtools.processes import ManagedProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Writes its ready file as every service does, then waits to be stopped.
SERVICE = textwrap.dedent(
    """
    import sys, time
    from services.common.ready import write_ready_file
    write_ready_file(sys.argv[1], {"address": "127.0.0.1:1"})
    time.sleep(60)
    """
)


def started(tmp_path: pathlib.Path, ready: pathlib.Path) -> ManagedProcess:
    process = ManagedProcess(
        "service",
        [sys.executable, "-c", SERVICE, str(ready)],
        log_dir=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
        ready_file=ready,
        cwd=ROOT,
    ).start()
    assert process.wait_ready(timeout=30)["pid"] == process.pid
    return process


def test_a_stopped_process_leaves_no_ready_file(tmp_path: pathlib.Path) -> None:
    ready = tmp_path / "service.ready.json"
    process = started(tmp_path, ready)
    process.stop()
    assert not ready.exists(), ready.read_text()


def test_a_ready_file_another_process_wrote_since_is_kept(tmp_path: pathlib.Path) -> None:
    ready = tmp_path / "service.ready.json"
    process = started(tmp_path, ready)
    # The same path, taken over by a newer process (a restart elsewhere) before this stop.
    ready.write_text(json.dumps({"address": "127.0.0.1:2", "pid": process.pid + 1}))
    process.stop()
    assert json.loads(ready.read_text())["address"] == "127.0.0.1:2"
