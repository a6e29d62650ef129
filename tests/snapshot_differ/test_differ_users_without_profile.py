"""Users without a SharePoint profile are a state, not a failure: counted apart,
never PARTIAL, never in the LOB app's set; a user who loses their profile
leaves it with a DELETED event saying why, one who gains it enters with CREATED."""

from __future__ import annotations

from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2, notifier_pb2

NO_SITE = "no personal site provisioned (HTTP 400: Unable to retrieve user's mysite URL.)"
NO_LICENCE = "no SharePoint Online licence (HTTP 400: Tenant does not have a SPO license.)"


def kinds(events: list[notifier_pb2.ChangeEvent]) -> dict[str, str]:
    return {e.user_id: notifier_pb2.ChangeKind.Name(e.kind) for e in events}


async def test_users_without_a_profile_leave_runs_succeeded_and_deletions_working(
    harness: DifferHarness,
) -> None:
    profiles = [make_profile(i) for i in range(20)]
    guest, room = profiles[18]["id"], profiles[19]["id"]
    harness.set_profiles(profiles)
    harness.extender.without_profile = {guest: NO_SITE, room: NO_LICENCE}

    first = await harness.runner.run_to_end(0, 1)
    assert first.state == differ_pb2.SUCCEEDED, first.error
    assert (first.counts.failed, first.counts.without_profile) == (0, 2)
    assert (first.counts.users, first.counts.created) == (20, 18)
    created = kinds(await harness.new_events())
    assert guest not in created and room not in created

    # Next run: one member deleted from the directory, and it is deleted.
    harness.set_profiles(profiles[1:])
    second = await harness.runner.run_to_end(0, 1)
    assert second.state == differ_pb2.SUCCEEDED, second.error
    assert (second.counts.deleted, second.counts.without_profile) == (1, 2)
    deleted = await harness.new_events()
    assert kinds(deleted) == {profiles[0]["id"]: "DELETED"}
    assert "no longer listed" in deleted[0].reason


async def test_a_user_who_loses_the_profile_leaves_with_why_and_comes_back(
    harness: DifferHarness,
) -> None:
    profiles = [make_profile(i) for i in range(10)]
    member = profiles[3]["id"]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)
    await harness.new_events()

    # The member's SharePoint licence is removed: reported gone, not failed.
    harness.extender.without_profile = {member: NO_LICENCE}
    lost = await harness.runner.run_to_end(0, 1)
    assert lost.state == differ_pb2.SUCCEEDED, lost.error
    assert (lost.counts.failed, lost.counts.deleted, lost.counts.without_profile) == (0, 1, 1)
    events = await harness.new_events()
    assert kinds(events) == {member: "DELETED"}
    assert events[0].reason.startswith("no SharePoint profile any more: no SharePoint Online")
    assert events[0].before.id == member

    quiet = await harness.runner.run_to_end(0, 1)
    assert (quiet.state, quiet.counts.deleted, quiet.counts.without_profile) == (
        differ_pb2.SUCCEEDED,
        0,
        1,
    )
    assert await harness.new_events() == []

    # The licence is given back: the profile enters again.
    harness.extender.without_profile = {}
    back = await harness.runner.run_to_end(0, 1)
    assert back.state == differ_pb2.SUCCEEDED and back.counts.created == 1
    events = await harness.new_events()
    assert kinds(events) == {member: "CREATED"} and events[0].reason == ""
