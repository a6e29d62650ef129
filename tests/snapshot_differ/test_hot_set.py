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
