"""`make dev` leaves no process behind, however it ends: each process the stack started
(Redis, the emulator, the services, the gateway's launcher and its Envoy) dies with it,
whether its own process is SIGKILLed or its process group gets SIGTERM, even mid-start."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from devtools.processes import ManagedProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Starting the stack on a loaded machine; the services' shutdown grace is 3 s.
START_TIMEOUT = 240.0
GONE_TIMEOUT = 30.0
DEV = [sys.executable, "-m", "devtools.devstack", "dev"]  # what `make dev` runs


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a live process, None when it is gone."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _alive(pid: int, started: int) -> bool:
    """Whether the very process recorded (not a later one reusing its pid) still runs."""
    stat = _stat(pid)
    return stat is not None and stat[2] == started and stat[0] not in ("Z", "X")


def _descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live process under `root`."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    pending = [root]
    while pending:
        for child in parents.get(pending.pop(), []):
            found[child] = starts[child]
            pending.append(child)
    return found


def _command(pid: int) -> str:
    with contextlib.suppress(OSError):
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _mentioning(state_dir: pathlib.Path) -> list[str]:
    """Live processes whose command line or environment names `state_dir`: whatever the
    stack started, including any started after the pids were recorded."""
    needle = str(state_dir).encode()
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if (
                needle in (entry / "cmdline").read_bytes()
                or needle in (entry / "environ").read_bytes()
            ):
                stat = _stat(int(entry.name))
                if stat is not None and stat[0] not in ("Z", "X"):
                    found.append(f"{entry.name}: {_command(int(entry.name))}")
    return found


def _left_after(children: dict[int, int], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = [f"{pid}: {_command(pid)}" for pid, start in children.items() if _alive(pid, start)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.fixture
def dev_stack(tmp_path: pathlib.Path) -> Iterator[tuple[subprocess.Popen[bytes], pathlib.Path]]:
    """`make dev`'s entry on free ports, in a process group of its own."""
    state_dir = tmp_path / "dev"
    log = (tmp_path / "dev.log").open("wb")
    stack = subprocess.Popen(
        [*DEV, "--users", "5", "--free-ports", "--state-dir", str(state_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield stack, state_dir
    finally:
        # Whatever a failed test left: stopped by pid, the stack's then its children's.
        children = _descendants(stack.pid)
        if stack.poll() is None:
            stack.kill()
        stack.wait()
        for pid, start in children.items():
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)
        log.close()


def _wait_for(path: pathlib.Path, stack: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not path.exists():
        assert stack.poll() is None, f"the stack exited early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {path.name}:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def _children_when_up(
    stack: subprocess.Popen[bytes], state_dir: pathlib.Path, tmp_path: pathlib.Path
) -> dict[int, int]:
    _wait_for(state_dir / "gateway.ready.json", stack, tmp_path / "dev.log")
    children = _descendants(stack.pid)
    names = {pathlib.Path(_command(pid).split(" ")[0]).name for pid in children}
    # The grandchild too: Envoy, started by the gateway's launcher.
    assert {"envoy", "redis-server"} <= names, names
    assert len(children) >= 7, [_command(pid) for pid in children]
    return children


def test_children_die_when_the_stack_is_sigkilled(
    dev_stack: tuple[subprocess.Popen[bytes], pathlib.Path], tmp_path: pathlib.Path
) -> None:
    stack, state_dir = dev_stack
    children = _children_when_up(stack, state_dir, tmp_path)
    stack.kill()
    stack.wait()
    assert _left_after(children, GONE_TIMEOUT) == []
    assert _mentioning(state_dir) == []


def test_children_die_when_the_process_group_gets_sigterm(
    dev_stack: tuple[subprocess.Popen[bytes], pathlib.Path], tmp_path: pathlib.Path
) -> None:
    stack, state_dir = dev_stack
    children = _children_when_up(stack, state_dir, tmp_path)
    os.killpg(stack.pid, signal.SIGTERM)
    assert stack.wait(timeout=60) == 0
    assert _left_after(children, GONE_TIMEOUT) == []
    assert _mentioning(state_dir) == []


def test_sigterm_while_the_stack_starts_stops_what_it_started(
    dev_stack: tuple[subprocess.Popen[bytes], pathlib.Path], tmp_path: pathlib.Path
) -> None:
    stack, state_dir = dev_stack
    # The emulator is up; the services are about to start.
    _wait_for(state_dir / "emulator.ready.json", stack, tmp_path / "dev.log")
    children = _descendants(stack.pid)
    os.killpg(stack.pid, signal.SIGTERM)
    assert stack.wait(timeout=60) == 0
    assert _left_after(children, GONE_TIMEOUT) == []
    assert _mentioning(state_dir) == []
    # It stopped there, rather than starting the rest of the stack first.
    assert not (state_dir / "logs" / "gateway.log").exists()


def test_a_child_started_from_a_short_lived_thread_outlives_the_thread(
    tmp_path: pathlib.Path,
) -> None:
    # The parent-death signal fires when the thread that forked the child ends:
    # a process the stack starts from a worker thread must live on after it.
    started: list[ManagedProcess] = []
    worker = threading.Thread(
        target=lambda: started.append(
            ManagedProcess(
                "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log_dir=tmp_path
            ).start()
        )
    )
    worker.start()
    worker.join()
    try:
        time.sleep(1.0)
        assert started[0].alive()
    finally:
        started[0].stop()
