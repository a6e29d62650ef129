"""The differ killed (SIGKILL) at 21 points of a run with creates, updates and
deletes pending, then run again: the LOB side gets every change exactly once
(by event id), and nothing that did not happen.

Each case commits a baseline of 30 users, changes the tenant (4 new users, 5
edited — one of them by the LOB app — and 3 gone), then runs
`python -m services.snapshot_differ run` with DIFFER_CRASH_AT naming the
point where the process kills itself, and runs it again without.
"""

from __future__ import annotations

import json

import pytest
from differ_process import differ_env, run_differ
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2, notifier_pb2
from services.common.profiles import digest
from services.common.redis_keys import LOB_WRITES_KEY
from services.snapshot_differ.lock import lock_key

# With 31 profiles read in batches of 4, events published 2 at a time and
# parts of 5 profiles, every count below is reached by the run.
CRASH_POINTS = [
    "locked:1",
    "compared:1",
    "staged:1",
    "published:1",
    "compared:4",
    "part-written:2",
    "published:2",
    "compared:7",
    "part-written:5",
    "published:4",
    "enumerated:1",
    "deletes-found:1",
    "published:6",
    "part-written:7",
    "manifest-written:1",
    "flushed:1",
    "latest-marked:1",
    "switched:1",
    "applied:1",
    "lob-forgotten:1",
    "finished:1",
]

BASELINE = [make_profile(i) for i in range(30)]
CREATED = [make_profile(i) for i in range(30, 34)]
UPDATED = {
    2: {"aboutMe": "Back from leave"},
    7: {"skills": ["Python", "Rust"]},
    13: {"schools": ["MIT"]},  # written by the LOB app
    21: {"interests": []},
    26: {"jobTitle": "Principal Engineer", "pastProjects": ["Apollo", "Gemini"]},
}
DELETED = {5, 17, 28}
SIZES = {"COMPARE_BATCH": "4", "PUBLISH_BATCH": "2", "SNAPSHOT_PART_SIZE": "5"}


def _tenant_after() -> list[dict[str, object]]:
    profiles = [make_profile(i, **UPDATED.get(i, {})) for i in range(30) if i not in DELETED]
    return profiles + CREATED


def _expected_changes() -> set[tuple[str, str, str]]:
    expected = {("CREATED", p["id"], digest(p)) for p in CREATED}
    expected |= {
        ("UPDATED", make_profile(i)["id"], digest(make_profile(i, **fields)))
        for i, fields in UPDATED.items()
    }
    expected |= {("DELETED", make_profile(i)["id"], "") for i in DELETED}
    return expected


# A one-off run (the CronJob's), and a paced sweep's run.
COMMANDS = {
    "run": ("run", "--no-progress"),
    "sweep": ("sweep", "--runs", "1"),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("crash_at", CRASH_POINTS)
async def test_a_killed_run_and_its_rerun_deliver_every_change_once(
    harness: DifferHarness, authority: dict[str, object], crash_at: str, command: str
) -> None:
    harness.set_profiles(BASELINE)
    first = await harness.runner.run_to_end(0, 1)
    assert first.state == differ_pb2.SUCCEEDED
    await harness.new_events()

    after = _tenant_after()
    harness.set_profiles(after)
    lob_edit = make_profile(13, **UPDATED[13])
    await harness.redis.hset(LOB_WRITES_KEY, lob_edit["id"], digest(lob_edit))

    # Re-reads of the users seen changing are the subject of the tests below:
    # here none falls due within the run.
    paced = {"SYNC_INTERVAL_SECONDS": "60", "HOT_REREAD_SECONDS": "600"}
    crashed = await run_differ(
        differ_env(harness, authority, DIFFER_CRASH_AT=crash_at, **SIZES, **paced),
        *COMMANDS[command],
    )
    assert crashed.returncode == -9, (
        f"the run was not killed at {crash_at}: exit {crashed.returncode}\n{crashed.stderr}"
    )
    # The dead holder's lock would expire after SYNC_LOCK_TTL_SECONDS; the
    # test does not wait for that (test_cli covers the expiry).
    await harness.redis.delete(lock_key("s0of1"))

    rerun = await run_differ(differ_env(harness, authority, **SIZES, **paced), *COMMANDS[command])
    assert rerun.returncode == 0, rerun.stderr + rerun.stdout
    assert rerun.run["state"] == "SUCCEEDED"

    events = await harness.new_events()
    ids = [event.event_id for event in events]
    assert len(ids) == len(set(ids)), "an event reached the LOB side twice"
    got = {
        (
            notifier_pb2.ChangeKind.Name(e.kind),
            e.user_id,
            e.after.version if e.HasField("after") else "",
        )
        for e in events
    }
    assert got == _expected_changes(), f"after a crash at {crash_at}"
    assert len(events) == len(_expected_changes())
    origins = {e.user_id: notifier_pb2.ChangeOrigin.Name(e.origin) for e in events}
    assert origins.pop(lob_edit["id"]) == "LOB"
    assert set(origins.values()) == {"SHAREPOINT"}

    # The committed state is the tenant's: nothing left to publish, the
    # baseline and the newest snapshot hold exactly the 31 users.
    again = await harness.runner.run_to_end(0, 1)
    assert again.state == differ_pb2.SUCCEEDED
    assert (again.counts.unchanged, again.counts.created, again.counts.deleted) == (31, 0, 0)
    assert await harness.new_events() == []
    latest = json.loads((harness.store_dir / "snapshots/shard-0-of-1/LATEST.json").read_text())
    manifest = json.loads((harness.store_dir / latest["manifest"]).read_text())
    assert manifest["profiles"] == 31 and manifest["complete"] is True
    assert not await harness.redis.hexists(LOB_WRITES_KEY, lob_edit["id"])
    # The killed run is not left RUNNING.
    runs = await harness.runner.records.newest(10)
    assert all(run.state != differ_pb2.RUNNING for run in runs)


# -- hot re-reads: a user edited again while the paced sweep goes on ----------------------
#
# The sweep reads user 2 and user 9 (each edited once since the baseline) and
# publishes those changes; once it has listed everyone both are edited again,
# and the sweep holds its summary while the hot cycle (HOT_REREAD_SECONDS=1)
# reads them again: each follow-up goes out as its own event, from the state
# the LOB app has. A crash anywhere around it, then a rerun, must neither lose
# a change nor send an event from the baseline straight to the latest state
# (a change the LOB app never saw happen).
FIRST_EDITS = {2: "Back from leave", 9: "On the platform team"}
FOLLOW_UPS = {2: "Back from leave, and hiring", 9: "On the platform team, leading it"}
REREAD_CRASH_POINTS = [
    "reread-logged:1",
    "reread-staged:1",
    "published:3",
    "enumerated:1",
    "flushed:1",
    "switched:1",
    "applied:1",
]
# A 10 s interval spreads the reads over 5 s: the held summary (6 s) ends the
# run's reads after that, so the re-reads stop with them.
HOT = {"SYNC_INTERVAL_SECONDS": "10", "HOT_REREAD_SECONDS": "1"}


def _edited(index: int, text: str) -> dict[str, object]:
    return make_profile(index, aboutMe=text)


def _hot_tenant(harness: DifferHarness) -> None:
    harness.set_profiles(
        [_edited(i, FIRST_EDITS[i]) if i in FIRST_EDITS else make_profile(i) for i in range(30)]
    )
    harness.extender.edits_after_listing = {
        str(make_profile(i)["id"]): _edited(i, text) for i, text in FOLLOW_UPS.items()
    }
    # Long enough for the 1 s cycle to read both again after the edits.
    harness.extender.hold_seconds = 6.0


def _transitions(events: list[notifier_pb2.ChangeEvent]) -> list[tuple[str, str, str]]:
    return sorted((e.user_id, e.before.about_me, e.after.about_me) for e in events)


def _expected_transitions() -> list[tuple[str, str, str]]:
    expected = []
    for i in FIRST_EDITS:
        uid, original = str(make_profile(i)["id"]), str(make_profile(i)["aboutMe"])
        expected.append((uid, original, FIRST_EDITS[i]))
        expected.append((uid, FIRST_EDITS[i], FOLLOW_UPS[i]))
    return sorted(expected)


async def _committed_once_more(harness: DifferHarness) -> None:
    """A plain run after it finds the tenant committed: nothing to publish."""
    again = await harness.runner.run_to_end(0, 1)
    assert again.state == differ_pb2.SUCCEEDED
    assert (again.counts.unchanged, again.counts.updated) == (30, 0)
    assert await harness.new_events() == []


@pytest.mark.timeout(300)
async def test_a_follow_up_edit_during_a_sweep_goes_out_from_the_state_the_lob_app_has(
    harness: DifferHarness, authority: dict[str, object]
) -> None:
    harness.set_profiles(BASELINE)
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    await harness.new_events()
    _hot_tenant(harness)

    swept = await run_differ(differ_env(harness, authority, **HOT), "sweep", "--runs", "1")
    assert swept.returncode == 0, swept.stderr + swept.stdout
    assert swept.run["state"] == "SUCCEEDED"
    assert set(harness.extender.reread_ids) >= {str(make_profile(i)["id"]) for i in FOLLOW_UPS}
    events = await harness.new_events()
    assert _transitions(events) == _expected_transitions()
    assert len({e.event_id for e in events}) == len(events)
    await _committed_once_more(harness)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("crash_at", REREAD_CRASH_POINTS)
async def test_a_sweep_killed_around_a_hot_re_read_and_its_rerun_deliver_each_change_once(
    harness: DifferHarness, authority: dict[str, object], crash_at: str
) -> None:
    harness.set_profiles(BASELINE)
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    await harness.new_events()
    _hot_tenant(harness)

    crashed = await run_differ(
        differ_env(harness, authority, DIFFER_CRASH_AT=crash_at, **SIZES, **HOT),
        "sweep",
        "--runs",
        "1",
    )
    assert crashed.returncode == -9, (
        f"the run was not killed at {crash_at}: exit {crashed.returncode}\n{crashed.stderr}"
    )
    await harness.redis.delete(lock_key("s0of1"))

    rerun = await run_differ(differ_env(harness, authority, **SIZES, **HOT), "sweep", "--runs", "1")
    assert rerun.returncode == 0, rerun.stderr + rerun.stdout
    assert rerun.run["state"] == "SUCCEEDED"

    events = await harness.new_events()
    ids = [event.event_id for event in events]
    assert len(ids) == len(set(ids)), "an event reached the LOB side twice"
    assert _transitions(events) == _expected_transitions(), f"after a crash at {crash_at}"
    await _committed_once_more(harness)
