"""The object store refusing writes during a sync.

Outcome asserted: the run ends FAILED with an error that names the store
problem; nothing is committed (the baseline stays as it was); once the store
works again the next run succeeds, and the LOB app has every change exactly
once by event id — changes published before the failure are republished with
the same ids and dropped as duplicates.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from devtools.devstack.lob_client import LobClient, edit_in_delve
from devtools.devstack.stack import Stack, StackOptions


def test_a_store_that_refuses_writes_fails_the_run_and_loses_nothing(
    tmp_path: Path, lob_for: Callable[[Stack], LobClient]
) -> None:
    with Stack(StackOptions(state_dir=tmp_path, users=30, seed=5)) as stack:
        lob = lob_for(stack)
        assert lob.sync_and_wait()["state"] == "SUCCEEDED"
        first, cursor = lob.changes()
        targets = [event["after"]["id"] for event in first[:3]]
        for user_id in targets:
            edit_in_delve(stack.emulator_url, stack.ca_file, user_id, skills=["Fault tolerance"])

        # The shard's folder becomes a file: no new snapshot can be written.
        shard_dir = stack.snapshot_store / "snapshots" / "shard-0-of-1"
        assert shard_dir.is_dir()
        kept = tmp_path / "kept-snapshots"
        shutil.move(shard_dir, kept)
        shard_dir.write_text("not a directory")
        failed = lob.sync_and_wait()
        assert failed["state"] == "FAILED", failed
        assert "Error" in failed["error"] or "directory" in failed["error"].lower()

        shard_dir.unlink()
        shutil.move(kept, shard_dir)
        recovered = lob.sync_and_wait()
        assert recovered["state"] == "SUCCEEDED", recovered
        assert recovered["counts"]["updated"] == "3"

        events, _ = lob.changes(cursor)
        assert all(n == 1 for n in Counter(e["eventId"] for e in events).values())
        assert sorted(e["userId"] for e in events) == sorted(targets)
        assert {e["kind"] for e in events} == {"UPDATED"}
