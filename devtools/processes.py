"""Starting and stopping the stack's processes on one machine.

Used by `make dev`, `make demo` and the tests. Every process is started in
its own session with a ready file to report where it listens, and stopped by
its process id (SIGTERM, then SIGKILL after a timeout), never by name.

A child also dies with the process that started it, however that one ends
(SIGKILL included): the kernel sends it SIGTERM when its parent dies (Linux's
parent-death signal). Programs that start children of their own (the gateway's
launcher starting Envoy) do the same, so no grandchild outlives the stack.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import os
import pathlib
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

__all__ = ["ManagedProcess", "ProcessFailed", "free_port"]


class ProcessFailed(RuntimeError):
    """A process exited or did not become ready in time."""


def free_port() -> int:
    """A port free on 127.0.0.1 now, for programs that cannot bind port 0 themselves."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# What a child gets when its parent dies: the signal stop() sends first, so a
# service shuts down as it does when stopped (its grace period is bounded).
PARENT_DEATH_SIGNAL = signal.SIGTERM


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: the child gets PARENT_DEATH_SIGNAL when its parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, PARENT_DEATH_SIGNAL, 0, 0, 0) != 0:
            os._exit(126)  # a child that could outlive the stack is not started
        # The parent may have died between fork and prctl: nothing would signal then.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


class _Spawner:
    """Starts children from one thread that lives as long as this process.

    The parent-death signal fires when the *thread* that forked the child exits,
    not the process: a child started from a short-lived thread (a test's worker, a
    thread pool) would be killed with that thread. A daemon thread ends only with
    the process, so a child dies exactly when the process that started it does.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], concurrent.futures.Future[Any]]
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def popen(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        with self._lock:
            # Not alive in a child forked from this process: it starts its own.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="process-spawner", daemon=True
                )
                self._thread.start()
        self._requests.put((start, future))
        return future.result()

    def _serve(self) -> None:
        while True:
            start, future = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as error:  # raised again in the caller's thread
                future.set_exception(error)


_SPAWNER = _Spawner()


class ManagedProcess:
    """One child process with its log file and (optionally) its ready file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: pathlib.Path,
        env: Mapping[str, str] | None = None,
        ready_file: pathlib.Path | None = None,
        cwd: pathlib.Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(os.environ if env is None else env)
        self.ready_file = ready_file
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)
        self._log = self.log_path.open("ab")
        log = self._log
        preexec = _die_with_parent(os.getpid())
        self.process = _SPAWNER.popen(
            lambda: subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=preexec,
            )
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """Waits for the ready file (or, without one, only checks the process lives)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ProcessFailed(
                    f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                )
            if self.ready_file is None:
                return {}
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                self.ready = json.loads(self.ready_file.read_text())
                return self.ready
            time.sleep(0.05)
        raise ProcessFailed(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._forget_ready_file()
        return self.process.returncode

    def _forget_ready_file(self) -> None:
        """A stopped process leaves no ready file naming it: whoever reads the state
        folder next (a script, a second `make dev`) must not find a dead address."""
        if self.ready_file is None or self.process is None:
            return
        try:
            written = json.loads(self.ready_file.read_text())
        except FileNotFoundError:
            return
        except (json.JSONDecodeError, OSError):
            written = {}
        # A file another process wrote since (the same path reused) is left alone.
        if not isinstance(written, dict) or written.get("pid") in (None, self.process.pid):
            self.ready_file.unlink(missing_ok=True)


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module` with this interpreter."""
    return [sys.executable, "-m", module, *args]
