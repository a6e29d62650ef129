"""A test hook: make a `run` process kill itself at a named point of a run.

    DIFFER_CRASH_AT=published:3 python -m services.snapshot_differ run

SIGKILLs the process the third time it passes `crash_point("published")`,
with no cleanup, exactly like an OOM kill or a node failure. The crash tests
(tests/snapshot_differ/test_crash_safety.py) use it to prove that a rerun
after a kill at any of these points delivers every change exactly once. It
is read once at import; unset (always, outside those tests) it does nothing.

The points, in the order a run passes them:

    locked              lock taken, run recorded
    compared            a batch of profiles compared (before its events go out)
    staged              a batch of changes written to the draft baseline
    part-written        a snapshot part stored
    published           a batch of events accepted by the notifier
    reread-logged       a hot re-read found follow-up changes: the events that
                        brought their users to the draft's state written ahead
    reread-staged       the follow-ups staged and written ahead, not yet sent
    enumerated          the extender's stream ended
    deletes-found       vanished users listed
    manifest-written    the snapshot's manifest stored
    flushed             every event accepted by the notifier
    latest-marked       LATEST.json points at the new snapshot
    switched            the commit point: the draft is marked as committing
    applied             a chunk of the run's changes applied to the live baseline
    lob-forgotten       LOB-written digests matched by the run forgotten
    pruned              old snapshots removed
    finished            final run record saved, lock still held
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["CRASH_ENV", "crash_point"]

CRASH_ENV = "DIFFER_CRASH_AT"


def _target(raw: str | None) -> tuple[str, int] | None:
    if not raw:
        return None
    stage, _, count = raw.partition(":")
    return stage, int(count or "1")


_TARGET = _target(os.environ.get(CRASH_ENV))
_passed: Counter[str] = Counter()


def crash_point(stage: str) -> None:
    """Kills this process here if DIFFER_CRASH_AT names this pass of `stage`."""
    if _TARGET is None or _TARGET[0] != stage:
        return
    _passed[stage] += 1
    if _passed[stage] == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
