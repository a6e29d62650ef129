"""A sync run against a scripted extender, the real notifier and real Redis:
what the LOB app receives, and what survives failures."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2, notifier_pb2
from services.common.errors import AlreadyRunning
from services.common.profiles import digest
from services.common.redis_keys import LOB_WRITES_KEY


@pytest.fixture
async def harness(
    redis_client: aioredis.Redis, redis_url: str, tmp_path: pathlib.Path
) -> AsyncIterator[DifferHarness]:
    async with DifferHarness(redis_client, redis_url, tmp_path / "store") as h:
        yield h


def kinds(events: list[notifier_pb2.ChangeEvent]) -> list[str]:
    return [notifier_pb2.ChangeKind.Name(e.kind) for e in events]


async def test_first_run_creates_every_user_then_nothing(harness: DifferHarness) -> None:
    harness.set_profiles([make_profile(i) for i in range(10)])
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    assert (run.counts.created, run.counts.profiles, run.counts.users) == (10, 10, 10)
    events = await harness.new_events()
    assert kinds(events) == ["CREATED"] * 10
    assert {e.user_id for e in events} == {make_profile(i)["id"] for i in range(10)}

    again = await harness.runner.run_to_end(0, 1)
    assert again.state == differ_pb2.SUCCEEDED
    assert again.counts.unchanged == 10
    assert await harness.new_events() == []


async def test_an_edit_gives_one_update_with_field_level_differences(
    harness: DifferHarness,
) -> None:
    profiles = [make_profile(i) for i in range(6)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()

    edited = make_profile(3, aboutMe="New about", skills=["Python", "Kubernetes"])
    harness.set_profiles([*profiles[:3], edited, *profiles[4:]])
    run = await harness.runner.run_to_end(0, 1)
    assert (run.counts.updated, run.counts.unchanged) == (1, 5)
    [event] = await harness.new_events()
    assert event.kind == notifier_pb2.UPDATED
    assert event.origin == notifier_pb2.SHAREPOINT
    assert list(event.changed_fields) == ["aboutMe", "skills"]
    about, skills = event.field_changes
    assert (about.before.string_value, about.after.string_value) == ("About user 3", "New about")
    assert list(skills.added) == ["Kubernetes"] and list(skills.removed) == ["Skill 3"]
    assert event.before.about_me == "About user 3" and event.after.about_me == "New about"
    assert event.after.version == digest(edited)


async def test_reordering_a_list_is_not_a_change(harness: DifferHarness) -> None:
    harness.set_profiles([make_profile(1, skills=["A", "B"])])
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()
    harness.set_profiles([make_profile(1, skills=["B", "A"])])
    await harness.runner.run_to_end(0, 1)
    assert await harness.new_events() == []


async def test_a_vanished_user_is_deleted_only_by_a_complete_run(harness: DifferHarness) -> None:
    profiles = [make_profile(i) for i in range(5)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()

    # User 4 vanished, but user 0 failed to read: a partial run deletes nothing
    # and leaves user 0 as it was.
    harness.set_profiles(profiles[:4])
    harness.extender.failing = {profiles[0]["id"]}
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.PARTIAL
    assert run.counts.failed == 1 and run.counts.deleted == 0
    # The reason names the first profile that failed and why.
    assert run.error.startswith("1 profile(s) could not be read and were left unchanged")
    assert f"the first, {profiles[0]['id']}: " in run.error
    assert await harness.new_events() == []

    # With everything readable the deletion goes through, once.
    harness.extender.failing = set()
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    [event] = await harness.new_events()
    assert event.kind == notifier_pb2.DELETED and event.user_id == profiles[4]["id"]
    assert event.before.display_name == "User 4" and not event.HasField("after")


async def test_a_crash_mid_stream_commits_nothing_and_the_rerun_repeats_no_event(
    harness: DifferHarness,
) -> None:
    profiles = [make_profile(i) for i in range(12)]
    harness.set_profiles(profiles)
    harness.extender.cut_after = 9  # some events are already published when it breaks
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.FAILED
    # The gRPC status and its details, not grpc's multi-line representation.
    assert run.error == "UNAVAILABLE: extender went away"
    partial_events = await harness.new_events()
    assert 0 < len(partial_events) < 12
    assert await harness.redis.get("profilesync:baseline:{s0of1}:current") is None

    harness.extender.cut_after = None
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    rest = await harness.new_events()
    ids = [e.event_id for e in partial_events + rest]
    assert len(ids) == len(set(ids)) == 12, "every user created exactly once across both runs"


async def test_lost_redis_baseline_is_rebuilt_from_the_snapshot(harness: DifferHarness) -> None:
    profiles = [make_profile(i) for i in range(9)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()

    baseline_keys = [k async for k in harness.redis.scan_iter(match="profilesync:baseline:*")]
    await harness.redis.delete(*baseline_keys)
    harness.set_profiles([*profiles[:8], make_profile(8, interests=["Go"])])
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    events = await harness.new_events()
    assert kinds(events) == ["UPDATED"], "a rebuilt baseline must not make every user new"
    assert list(events[0].field_changes[0].removed) == ["Chess"]


async def test_snapshot_has_parts_and_a_manifest_written_last(harness: DifferHarness) -> None:
    harness.set_profiles([make_profile(i) for i in range(15)])
    run = await harness.runner.run_to_end(0, 1)
    manifest = json.loads((harness.store_dir / run.snapshot).read_text())
    assert manifest["complete"] is True and manifest["profiles"] == 15
    assert [part["count"] for part in manifest["parts"]] == [7, 7, 1]
    latest = json.loads((harness.store_dir / "snapshots/shard-0-of-1/LATEST.json").read_text())
    assert latest["manifest"] == run.snapshot


async def test_old_snapshots_are_pruned(harness: DifferHarness) -> None:
    harness.set_profiles([make_profile(1)])
    for _ in range(5):
        await harness.runner.run_to_end(0, 1)
    runs = sorted(
        p.name for p in (harness.store_dir / "snapshots/shard-0-of-1").iterdir() if p.is_dir()
    )
    assert len(runs) == 3


async def test_a_change_written_by_the_lob_app_is_marked_lob(harness: DifferHarness) -> None:
    harness.set_profiles([make_profile(1), make_profile(2)])
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()
    lob_edit = make_profile(1, schools=["MIT"])
    delve_edit = make_profile(2, schools=["ETH"])
    await harness.redis.hset(LOB_WRITES_KEY, lob_edit["id"], digest(lob_edit))
    harness.set_profiles([lob_edit, delve_edit])
    await harness.runner.run_to_end(0, 1)
    origins = {
        e.user_id: notifier_pb2.ChangeOrigin.Name(e.origin) for e in await harness.new_events()
    }
    assert origins == {lob_edit["id"]: "LOB", delve_edit["id"]: "SHAREPOINT"}
    assert not await harness.redis.hexists(LOB_WRITES_KEY, lob_edit["id"])


async def test_one_run_per_shard_at_a_time(harness: DifferHarness) -> None:
    harness.set_profiles([make_profile(i) for i in range(3)])
    run = await harness.runner.start(0, 1)
    with pytest.raises(AlreadyRunning, match=run.run_id):
        await harness.make_runner().start(0, 1)
    await harness.runner.wait_all()
    finished = await harness.runner.records.get(run.run_id)
    assert finished.state == differ_pb2.SUCCEEDED
    # The lock is released when the run ends.
    second = await harness.runner.run_to_end(0, 1)
    assert second.state == differ_pb2.SUCCEEDED


async def test_shards_sync_disjoint_users(harness: DifferHarness) -> None:
    harness.set_profiles([make_profile(i) for i in range(40)])
    seen: set[str] = set()
    for index in range(3):
        run = await harness.runner.run_to_end(index, 3)
        assert run.state == differ_pb2.SUCCEEDED
        events = await harness.new_events()
        ids = {e.user_id for e in events}
        assert not ids & seen
        seen |= ids
    assert len(seen) == 40
    # A second pass of shard 1 alone deletes no user of the other shards.
    run = await harness.runner.run_to_end(1, 3)
    assert run.counts.deleted == 0
