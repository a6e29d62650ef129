"""Watching a run as it goes: a progress bar for a person at a terminal.

    bar = ProgressBar(sys.stderr)
    run = await runner.run_to_end(0, 1, observer=bar)
    bar.close(run)

The runner calls `update` after every compared batch; the bar redraws at
most a few times a second on one line (carriage return, no scrolling). When
the differ runs under cron or in a pod, no bar is drawn: the JSON logs say
what happens instead.
"""

from __future__ import annotations

import shutil
import time
from typing import Protocol, TextIO

from profilesync.v1 import differ_pb2

__all__ = ["ProgressBar", "RunObserver"]

REDRAW_SECONDS = 0.1


class RunObserver(Protocol):
    def update(self, run: differ_pb2.SyncRun, stage: str, expected: int) -> None:
        """`expected`: the users the run expects to read (0 = unknown)."""
        ...


def _count(value: int) -> str:
    return f"{value:,}"


class ProgressBar:
    def __init__(self, stream: TextIO, width: int | None = None) -> None:
        self._stream = stream
        self._width = width
        self._started = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def _columns(self) -> int:
        return self._width or shutil.get_terminal_size((100, 24)).columns

    def render(self, run: differ_pb2.SyncRun, stage: str, expected: int) -> str:
        counts = run.counts
        done = counts.profiles + counts.failed
        total = max(counts.users or expected, done)
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = done / elapsed
        changes = f"+{_count(counts.created)} ~{_count(counts.updated)} -{_count(counts.deleted)}"
        if counts.failed:
            changes += f" !{_count(counts.failed)} failed"
        tail = f" {_count(done)}/{_count(total) if total else '?'} {stage} {changes} {rate:,.0f}/s"
        bar_width = max(self._columns() - len(tail) - 3, 10)
        fraction = min(done / total, 1.0) if total else 0.0
        filled = int(bar_width * fraction)
        return f"[{'#' * filled}{'.' * (bar_width - filled)}]{tail}"

    def update(self, run: differ_pb2.SyncRun, stage: str, expected: int) -> None:
        now = time.monotonic()
        if now - self._last < REDRAW_SECONDS:
            return
        self._last = now
        self._stream.write("\r\x1b[K" + self.render(run, stage, expected))
        self._stream.flush()
        self._drawn = True

    def close(self, run: differ_pb2.SyncRun) -> None:
        """Draws the final state and ends the line with a summary."""
        if self._drawn:
            self._stream.write("\r\x1b[K" + self.render(run, "done", 0) + "\n")
        counts = run.counts
        state = differ_pb2.RunState.Name(run.state)
        self._stream.write(
            f"run {run.run_id}: {state}{' (dry run)' if run.dry_run else ''} — "
            f"{_count(counts.profiles)} read, {_count(counts.created)} created, "
            f"{_count(counts.updated)} updated, {_count(counts.deleted)} deleted, "
            f"{_count(counts.unchanged)} unchanged, {_count(counts.failed)} failed"
            + (f", {_count(counts.held_deletes)} deletions held" if counts.held_deletes else "")
            + "\n"
        )
        if run.error:
            self._stream.write(f"  {run.error}\n")
        self._stream.flush()
