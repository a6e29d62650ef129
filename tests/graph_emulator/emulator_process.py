"""Starting the emulator CLI as a real process for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class EmulatorProcess:
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    ready_file: Path
    log_file: Path

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log_lines(self) -> list[str]:
        return self.log_file.read_text(encoding="utf-8").splitlines()


def trust(running: EmulatorProcess) -> ssl.SSLContext:
    """A client TLS context trusting only the emulator's CA."""
    return ssl.create_default_context(cafile=running.ready["caFile"])


def start_emulator(workdir: Path, *extra: str, timeout: float = 30) -> EmulatorProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    ready_file = workdir / "ready.json"
    log_file = workdir / "emulator.log"
    command = [
        sys.executable,
        "-m",
        "devtools.graph_emulator",
        "--port",
        "0",
        "--state-dir",
        str(workdir / "state"),
        "--ready-file",
        str(ready_file),
        *extra,
    ]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited early:\n{log_file.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"emulator not ready in {timeout}s:\n{log_file.read_text()}")
        time.sleep(0.05)
    ready = json.loads(ready_file.read_text(encoding="utf-8"))
    return EmulatorProcess(process, ready, ready_file, log_file)
