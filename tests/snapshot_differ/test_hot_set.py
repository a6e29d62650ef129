"""The hot set's cycle: a user seen changing is read again after 15 s, the
wait doubling while the profile stays the same up to a minute, out after 10
quiet minutes; another change starts the cycle again."""

from __future__ import annotations

from services.snapshot_differ.hot import HotSet


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_user_is_read_again_ever_less_often_then_leaves() -> None:
    clock = Clock()
    hot = HotSet(first_seconds=15, quiet_seconds=600, clock=clock)
    hot.changed(["u1"])
    waits = []
    last = clock.now
    while "u1" in hot:
        due = hot.next_due()
        assert due is not None
        clock.now = due
        assert hot.due(limit=10) == ["u1"]
        waits.append(round(clock.now - last))
        last = clock.now
        hot.reread(["u1"], changed=set())
    # 15 s, 30 s, then every minute, the last re-read 10 min after the change.
    assert waits[:3] == [15, 30, 60] and max(waits) == 60
    assert sum(waits) == 600


def test_a_change_starts_the_cycle_again() -> None:
    clock = Clock()
    hot = HotSet(first_seconds=15, quiet_seconds=600, clock=clock)
    hot.changed(["u1"])
    clock.now += 15
    hot.reread(["u1"], changed=set())
    clock.now += 30
    hot.reread(["u1"], changed={"u1"})
    assert hot.next_due() == clock.now + 15


def test_only_due_users_are_read_the_most_overdue_first_within_the_limit() -> None:
    clock = Clock()
    hot = HotSet(first_seconds=10, quiet_seconds=600, clock=clock)
    hot.changed(["a"])
    clock.now += 5
    hot.changed(["b", "c"])
    assert hot.due(limit=10) == []
    clock.now += 10
    assert hot.due(limit=2) == ["a", "b"]
    hot.forget(["a"])
    assert hot.due(limit=10) == ["b", "c"]


def read_until_quiet(hot: HotSet, clock: Clock, user_id: str) -> list[int]:
    """Re-reads `user_id` each time it falls due, finding nothing, until it
    leaves the set; the waits between re-reads."""
    waits, last = [], clock.now
    while user_id in hot:
        due = hot.next_due()
        assert due is not None
        clock.now = due
        waits.append(round(clock.now - last))
        last = clock.now
        hot.reread([user_id], changed=set())
    return waits


def test_when_users_rarely_change_again_the_waits_stretch_and_cost_fewer_reads() -> None:
    clock = Clock()
    hot = HotSet(first_seconds=15, quiet_seconds=600, clock=clock)
    default_reads = None
    for number in range(100):  # users who edit once, then stay quiet
        hot.changed([f"once-{number}"])
        waits = read_until_quiet(hot, clock, f"once-{number}")
        default_reads = default_reads or len(waits)
    assert hot.stretch == 8
    hot.changed(["quiet"])
    waits = read_until_quiet(hot, clock, "quiet")
    # 2 min, 4 min, then the last at 10 quiet minutes: 3 reads, not 12.
    assert waits == [120, 240, 240]
    assert default_reads == 12


def test_follow_ups_seen_again_bring_the_short_cycle_back() -> None:
    clock = Clock()
    hot = HotSet(first_seconds=15, quiet_seconds=600, clock=clock)
    for number in range(100):
        hot.changed([f"once-{number}"])
        read_until_quiet(hot, clock, f"once-{number}")
    assert hot.stretch == 8
    for number in range(60):  # sittings: every other user changes again on a re-read
        user = f"sitting-{number}"
        hot.changed([user])
        clock.now = hot.next_due() or clock.now
        hot.reread([user], changed={user} if number % 2 else set())
        read_until_quiet(hot, clock, user)
    assert hot.yield_estimate > 0.25
    assert hot.stretch == 1
    hot.changed(["next"])
    assert hot.next_due() == clock.now + 15


def test_users_forgotten_or_still_in_the_set_do_not_count() -> None:
    clock = Clock()
    hot = HotSet(first_seconds=15, quiet_seconds=600, clock=clock)
    before = hot.yield_estimate
    hot.changed(["gone", "staying"])
    clock.now += 15
    hot.reread(["gone", "staying"], changed=set())
    hot.forget(["gone"])  # no profile any more: says nothing of sittings
    assert hot.yield_estimate == before
