"""The freshness bench replays the edit workloads it says it does: bursty
edits come from a busy tenth of the users and half of them follow another
edit by the same user within the follow-up span; uniform edits do not; and a
warm-up of untimed edits comes first, so a timed follow-up is never timed as
a first edit because the edit it follows was left out."""

from __future__ import annotations

import collections
import dataclasses
import random

import pytest

from bench import freshness

USERS = [f"user-{number}" for number in range(10_000)]
# Long enough that shares are within a few points of their expectation.
PLAN = dataclasses.replace(freshness.FULL, edit_window=20_000.0)


def timed(edits: list[freshness.Edit]) -> list[freshness.Edit]:
    return [edit for edit in edits if edit.at >= 0]


@pytest.mark.parametrize("seed", [1, 19])
def test_bursty_edits_come_from_a_busy_tenth_and_half_follow_another(seed: int) -> None:
    edits = freshness.bursty_edits(USERS, PLAN, random.Random(seed))
    per_user = collections.Counter(edit.user_id for edit in timed(edits))
    busiest = sum(count for _, count in per_user.most_common(len(USERS) // 10))
    assert busiest / len(timed(edits)) == pytest.approx(0.8, abs=0.03)
    # Half are follow-ups by construction; a busy user's next sitting within
    # the span adds a few points.
    assert freshness.follow_up_share(edits, PLAN.follow_up_within) == pytest.approx(0.52, abs=0.04)


def test_uniform_edits_rarely_follow_one_by_the_same_user() -> None:
    edits = freshness.uniform_edits(USERS, PLAN, random.Random(1))
    assert freshness.follow_up_share(edits, PLAN.follow_up_within) < 0.05


@pytest.mark.parametrize("workload", sorted(freshness.WORKLOADS))
def test_a_warm_up_of_untimed_edits_comes_first(workload: str) -> None:
    plan = freshness.FULL
    edits = freshness.WORKLOADS[workload](USERS, plan, random.Random(freshness.SEED))
    warm_up = [edit for edit in edits if edit.at < 0]
    assert warm_up, "no untimed edits before timing starts"
    assert min(edit.at for edit in edits) >= -plan.warm_up
    assert max(edit.at for edit in edits) < plan.edit_window
    assert plan.warm_up >= plan.follow_up_within
    # Every moment of an interval is as likely to be timed.
    assert plan.edit_window % plan.interval == 0


def test_a_follow_up_counts_only_when_the_edit_it_follows_was_made() -> None:
    edits = [
        freshness.Edit(-50.0, "a"),  # warm-up: made, not timed
        freshness.Edit(10.0, "a"),  # follows it within the span
        freshness.Edit(20.0, "b"),
        freshness.Edit(500.0, "b"),  # too late to count as a follow-up
    ]
    assert freshness.follow_up_share(edits, within=120.0) == pytest.approx(1 / 3)
