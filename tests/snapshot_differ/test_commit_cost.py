"""A run stages only what changed and commits in O(changes): the committed
baseline is never copied, so Redis holds one baseline plus the run's changes,
and a commit that a crash cut short is finished by whoever loads the baseline
next."""

from __future__ import annotations

from typing import Any

from differ_process import differ_env, run_differ
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2
from services.snapshot_differ.baseline import Baseline
from services.snapshot_differ.lock import lock_key

LIVE_DIGESTS = "profilesync:baseline:{s0of1}:digests"
SIZES = {"COMPARE_BATCH": "8", "PUBLISH_BATCH": "4", "SNAPSHOT_PART_SIZE": "10"}


async def _live(harness: DifferHarness) -> dict[str, str]:
    raw = await harness.redis.hgetall(LIVE_DIGESTS)
    return {k.decode(): v.decode() for k, v in raw.items()}


async def _drafts(harness: DifferHarness) -> list[str]:
    pattern = "profilesync:baseline:{s0of1}:draft:*"
    return sorted([k.decode() async for k in harness.redis.scan_iter(match=pattern)])


async def _crash_then_change(
    harness: DifferHarness, authority: dict[str, Any], crash_at: str
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A committed baseline of 40 users; then one edited, one gone, and a run killed."""
    profiles = [make_profile(i) for i in range(40)]
    harness.set_profiles(profiles)
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    before = await _live(harness)
    after = [make_profile(0, aboutMe="Edited in Delve"), *profiles[1:39]]
    harness.set_profiles(after)
    env = differ_env(harness, authority, DIFFER_CRASH_AT=crash_at, **SIZES)
    crashed = await run_differ(env, "run", "--no-progress")
    assert crashed.returncode == -9, crashed.stderr
    await harness.redis.delete(lock_key("s0of1"))
    return before, after


async def test_a_resync_stages_only_what_changed_and_leaves_the_baseline_alone(
    harness: DifferHarness, authority: dict[str, Any]
) -> None:
    before, after = await _crash_then_change(harness, authority, "flushed:1")
    # Every event is out, nothing committed: the live baseline is untouched
    # and the run's draft holds the one changed profile, not a copy of 40.
    assert await _live(harness) == before
    staged = [key for key in await _drafts(harness) if key.endswith((":digests", ":profiles"))]
    assert len(staged) == 2
    for key in staged:
        assert await harness.redis.hlen(key) == 1

    rerun = await run_differ(differ_env(harness, authority, **SIZES), "run", "--no-progress")
    assert rerun.run["state"] == "SUCCEEDED", rerun.stderr
    live = await _live(harness)
    assert set(live) == {str(p["id"]) for p in after}
    edited = str(after[0]["id"])
    assert live[edited] != before[edited]
    untouched = set(live) - {edited}
    assert {uid: live[uid] for uid in untouched} == {uid: before[uid] for uid in untouched}
    assert await _drafts(harness) == []


async def test_a_commit_cut_short_is_finished_by_the_next_load(
    harness: DifferHarness, authority: dict[str, Any]
) -> None:
    before, after = await _crash_then_change(harness, authority, "switched:1")
    # Killed right after the commit point: the live keys still hold the old
    # baseline, but the run is committed and loading the baseline finishes it.
    assert await _live(harness) == before
    base = await Baseline.load(harness.redis, "s0of1")
    assert not await harness.redis.exists("profilesync:baseline:{s0of1}:committing")
    assert set(await _live(harness)) == {str(p["id"]) for p in after}
    assert base.generation == (await harness.redis.get(base.pointer_key)).decode()
    assert await _drafts(harness) == []
    # Nothing is left to do: the next run finds no change.
    run = await harness.runner.run_to_end(0, 1)
    assert (run.counts.unchanged, run.counts.updated, run.counts.deleted) == (39, 0, 0)
