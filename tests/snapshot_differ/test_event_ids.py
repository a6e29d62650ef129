"""Event ids across syncs: a profile that flips back and forth is a new change
each time, while a run repeated against the same baseline repeats its ids.

The notifier drops an event whose id it has seen within its dedupe window
(7 days by default), so an id that repeats for a real change loses that change.
"""

from __future__ import annotations

import pytest
from differ_process import differ_env, run_differ
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2, notifier_pb2
from services.snapshot_differ.lock import lock_key

USERS = [make_profile(i) for i in range(6)]
FLIPPER = 3
STATE_A = {"aboutMe": "Working from Lisbon"}
STATE_B = {"aboutMe": "Working from Oslo"}


def _tenant(**flipper_fields: str) -> list[dict[str, object]]:
    return [
        make_profile(i, **flipper_fields) if i == FLIPPER else make_profile(i)
        for i in range(len(USERS))
    ]


async def _sync(harness: DifferHarness, **flipper_fields: str) -> list[notifier_pb2.ChangeEvent]:
    harness.set_profiles(_tenant(**flipper_fields))
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    return await harness.new_events()


async def test_a_profile_flipping_back_and_forth_reaches_the_lob_at_every_flip(
    harness: DifferHarness,
) -> None:
    created = await _sync(harness, **STATE_A)
    assert len(created) == len(USERS)

    flips = []
    for state in (STATE_B, STATE_A, STATE_B):  # A→B, B→A, A→B
        events = await _sync(harness, **state)
        assert len(events) == 1, f"the flip to {state} was not delivered"
        flips.extend(events)

    flipper = make_profile(FLIPPER)["id"]
    assert [notifier_pb2.ChangeKind.Name(e.kind) for e in flips] == ["UPDATED"] * 3
    assert {e.user_id for e in flips} == {flipper}
    assert [e.after.about_me for e in flips] == [
        STATE_B["aboutMe"],
        STATE_A["aboutMe"],
        STATE_B["aboutMe"],
    ]
    # The 1st and 3rd flips have the same before and after content; only the
    # baseline they started from tells them apart.
    assert flips[0].before.version == flips[2].before.version
    assert flips[0].after.version == flips[2].after.version
    assert len({e.event_id for e in flips}) == 3


async def test_a_deleted_user_who_comes_back_the_same_is_created_again(
    harness: DifferHarness,
) -> None:
    harness.set_profiles(USERS)
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    first = {e.user_id: e.event_id for e in await harness.new_events()}

    returning = make_profile(FLIPPER)
    harness.set_profiles([p for p in USERS if p["id"] != returning["id"]])
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    gone = await harness.new_events()
    assert [(notifier_pb2.ChangeKind.Name(e.kind), e.user_id) for e in gone] == [
        ("DELETED", returning["id"])
    ]

    harness.set_profiles(USERS)
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    back = await harness.new_events()
    assert [(notifier_pb2.ChangeKind.Name(e.kind), e.user_id) for e in back] == [
        ("CREATED", returning["id"])
    ]
    assert back[0].event_id != first[returning["id"]]


@pytest.mark.timeout(300)
async def test_a_rerun_after_redis_lost_the_baseline_repeats_the_killed_runs_ids(
    harness: DifferHarness, authority: dict[str, object]
) -> None:
    """A run killed after publishing part of its changes, then Redis loses the
    baseline (not the change log): the rerun rebuilds the baseline from the
    committed snapshot and must publish the same ids, so nothing reaches the
    LOB app twice."""
    harness.set_profiles(USERS)
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    await harness.new_events()
    edited = [make_profile(i, aboutMe=f"Edited {i}") for i in range(len(USERS))]
    harness.set_profiles(edited)

    sizes = {"COMPARE_BATCH": "2", "PUBLISH_BATCH": "2"}
    env = differ_env(harness, authority, **sizes)
    crashed = await run_differ({**env, "DIFFER_CRASH_AT": "published:1"}, "run", "--no-progress")
    assert crashed.returncode == -9, crashed.stderr
    await harness.redis.delete(lock_key("s0of1"))
    baseline = [key async for key in harness.redis.scan_iter(match="profilesync:baseline:*")]
    await harness.redis.delete(*baseline)

    rerun = await run_differ(env, "run", "--no-progress")
    assert rerun.returncode == 0, rerun.stderr + rerun.stdout
    assert "rebuild" in {t["stage"] for t in rerun.run["timings"]}

    events = await harness.new_events()
    assert sorted(e.user_id for e in events) == sorted(p["id"] for p in edited)
    assert len({e.event_id for e in events}) == len(events) == len(USERS)
