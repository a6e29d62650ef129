"""Deletions held above the threshold until approved, partial runs that
delete no one, Redis lost between runs, and dry runs."""

from __future__ import annotations

import dataclasses

import pytest
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2, notifier_pb2
from services.common.errors import FailedPrecondition, NotFound
from services.common.profiles import digest
from services.snapshot_differ.held import HeldRun
from services.snapshot_differ.run import SyncRunner


def kinds(events: list[notifier_pb2.ChangeEvent]) -> list[str]:
    return sorted(notifier_pb2.ChangeKind.Name(e.kind) for e in events)


async def committed_digests(harness: DifferHarness) -> dict[str, str]:
    raw = await harness.redis.hgetall("profilesync:baseline:{s0of1}:digests")
    return {k.decode(): v.decode() for k, v in raw.items()}


async def test_a_run_deleting_30_percent_is_held_until_approved(harness: DifferHarness) -> None:
    profiles = [make_profile(i) for i in range(10)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()
    before = await committed_digests(harness)

    # Three of ten users vanish (30% > the 20% default) while one is edited.
    edited = make_profile(0, aboutMe="Edited")
    harness.set_profiles([edited, *profiles[1:7]])
    held = await harness.runner.run_to_end(0, 1)
    assert held.state == differ_pb2.HELD_FOR_DELETES
    assert (held.counts.held_deletes, held.counts.deleted, held.counts.updated) == (3, 0, 1)
    assert "would delete 3 of 10 users (30.0%)" in held.error
    assert f"/v1/syncs/{held.run_id}:approveDeletes" in held.error
    # The edit is delivered; no deletion yet, nothing committed.
    assert kinds(await harness.new_events()) == ["UPDATED"]
    assert await committed_digests(harness) == before
    assert (await harness.runner.records.get(held.run_id)).state == differ_pb2.HELD_FOR_DELETES

    approved = await harness.runner.approve_deletes(held.run_id)
    assert approved.state == differ_pb2.SUCCEEDED, approved.error
    assert (approved.counts.deleted, approved.counts.held_deletes) == (3, 0)
    assert {t.stage for t in approved.timings} >= {"approve", "commit"}
    deleted = await harness.new_events()
    assert kinds(deleted) == ["DELETED"] * 3
    assert {e.user_id for e in deleted} == {p["id"] for p in profiles[7:]}
    assert await committed_digests(harness) == {
        p["id"]: digest(p) for p in [edited, *profiles[1:7]]
    }
    assert await HeldRun.load(harness.redis, "s0of1") is None

    again = await harness.runner.run_to_end(0, 1)
    assert again.state == differ_pb2.SUCCEEDED and again.counts.unchanged == 7
    assert await harness.new_events() == []
    with pytest.raises(FailedPrecondition, match="not held for deletes"):
        await harness.runner.approve_deletes(held.run_id)


async def test_the_count_threshold_holds_too(harness: DifferHarness) -> None:
    harness.runner = SyncRunner(
        dataclasses.replace(harness.settings, delete_threshold_count=1),
        harness.redis,
        harness.runner.store,
        harness.runner.extender,
        harness.runner.notifier,
    )
    profiles = [make_profile(i) for i in range(50)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    harness.set_profiles(profiles[:48])  # 4%, but 2 > 1
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.HELD_FOR_DELETES
    assert "more than DELETE_THRESHOLD_COUNT (1)" in run.error


async def test_a_later_run_supersedes_a_held_one(harness: DifferHarness) -> None:
    profiles = [make_profile(i) for i in range(10)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()
    harness.set_profiles(profiles[:5])
    first = await harness.runner.run_to_end(0, 1)
    second = await harness.runner.run_to_end(0, 1)
    assert first.state == second.state == differ_pb2.HELD_FOR_DELETES

    old = await harness.runner.records.get(first.run_id)
    assert old.state == differ_pb2.FAILED and f"superseded by run {second.run_id}" in old.error
    with pytest.raises(FailedPrecondition, match="not held for deletes"):
        await harness.runner.approve_deletes(first.run_id)
    approved = await harness.runner.approve_deletes(second.run_id)
    assert approved.state == differ_pb2.SUCCEEDED
    events = await harness.new_events()
    assert kinds(events) == ["DELETED"] * 5
    assert len({e.event_id for e in events}) == 5


async def test_approving_an_unknown_run_is_not_found(harness: DifferHarness) -> None:
    with pytest.raises(NotFound, match="no-such-run"):
        await harness.runner.approve_deletes("no-such-run")


async def test_a_partial_run_deletes_no_one_and_keeps_failed_users_in_its_snapshot(
    harness: DifferHarness,
) -> None:
    profiles = [make_profile(i) for i in range(20)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()

    # Graph fails for two users while three have vanished: nobody is deleted.
    harness.set_profiles(profiles[:17])
    harness.extender.failing = {profiles[0]["id"], profiles[1]["id"]}
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.PARTIAL
    assert (run.counts.failed, run.counts.deleted, run.counts.held_deletes) == (2, 0, 0)
    assert await harness.new_events() == []

    # Redis is lost: the rebuild from the partial run's snapshot still knows
    # the two failed users, so they come back unchanged, not "created".
    await harness.redis.flushdb()
    harness.cursor = ""
    harness.extender.failing = set()
    harness.set_profiles(profiles[:17])
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    assert run.counts.unchanged == 17
    events = await harness.new_events()
    assert kinds(events) == ["DELETED"] * 3
    assert {p["id"] for p in profiles[17:]} == {e.user_id for e in events}
    assert {t.stage for t in run.timings} >= {"rebuild", "fetch", "compare", "commit"}


async def test_redis_flushed_between_two_runs_reports_only_the_real_changes(
    harness: DifferHarness,
) -> None:
    profiles = [make_profile(i) for i in range(20)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)

    await harness.redis.flushdb()  # the differ's baseline and the notifier's log alike
    harness.cursor = ""
    harness.set_profiles(
        [*profiles[:18], make_profile(19, skills=["Go"]), make_profile(20), make_profile(21)]
    )
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    assert (run.counts.created, run.counts.updated, run.counts.deleted) == (2, 1, 1)
    assert run.counts.unchanged == 18
    assert kinds(await harness.new_events()) == ["CREATED", "CREATED", "DELETED", "UPDATED"]


async def test_a_dry_run_reports_and_changes_nothing(harness: DifferHarness) -> None:
    profiles = [make_profile(i) for i in range(10)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()
    before = await committed_digests(harness)
    runs_on_disk = sorted((harness.store_dir / "snapshots/shard-0-of-1").iterdir())

    harness.set_profiles([make_profile(0, aboutMe="x"), *profiles[1:9], make_profile(11)])
    dry = await harness.runner.run_to_end(0, 1, dry_run=True)
    assert dry.dry_run and dry.state == differ_pb2.SUCCEEDED
    assert (dry.counts.created, dry.counts.updated, dry.counts.deleted) == (1, 1, 1)
    assert dry.snapshot == ""
    assert await harness.new_events() == []
    assert await committed_digests(harness) == before
    assert sorted((harness.store_dir / "snapshots/shard-0-of-1").iterdir()) == runs_on_disk
    drafts = "profilesync:baseline:*:draft:dry-*"
    leftovers = [k async for k in harness.redis.scan_iter(match=drafts)]
    assert leftovers == []

    # The real run afterwards finds the same changes.
    real = await harness.runner.run_to_end(0, 1)
    assert (real.counts.created, real.counts.updated, real.counts.deleted) == (1, 1, 1)
    assert len(await harness.new_events()) == 3


async def test_a_dry_run_says_it_would_hold_and_leaves_a_held_run_alone(
    harness: DifferHarness,
) -> None:
    profiles = [make_profile(i) for i in range(10)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    harness.set_profiles(profiles[:6])
    held = await harness.runner.run_to_end(0, 1)
    dry = await harness.runner.run_to_end(0, 1, dry_run=True)
    assert dry.state == differ_pb2.HELD_FOR_DELETES and dry.counts.held_deletes == 4
    with pytest.raises(FailedPrecondition, match="dry run"):
        await harness.runner.approve_deletes(dry.run_id)
    # The real held run is still approvable.
    assert (await harness.runner.approve_deletes(held.run_id)).state == differ_pb2.SUCCEEDED
