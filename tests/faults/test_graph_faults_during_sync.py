"""Microsoft Graph misbehaving during a whole sync run.

A storm: after a clean first sync and edits made in Delve, Graph answers 30%
of its operations with 429/5xx (with Retry-After) and cuts 5% of its
connections while a sync runs. Outcome asserted: the run succeeds, its
retries absorbing the storm (or ends PARTIAL naming the profiles it could not
read, which are then left as they were); nobody is deleted; the LOB app gets
exactly one UPDATED event per edited user, carrying the edited field, and
nothing for anyone else; the emulator's counters show the storm happened; a
run once Graph is healthy again publishes nothing new (or only the edits the
partial run left behind).

Timeouts: Graph answering slower than the extender's per-request timeout
(GRAPH_TIMEOUT_SECONDS, few GRAPH_MAX_ATTEMPTS). Outcome asserted: the run
does not hang; it ends FAILED or PARTIAL and its record says Graph timed out;
nobody is deleted and the committed baseline is untouched, so the next run
on a healthy Graph publishes every edit exactly once.
"""

from __future__ import annotations

import json
import pathlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from graph_admin import configure_graph, graph_stats

from devtools.devstack.lob_client import LobClient, edit_in_delve
from devtools.devstack.stack import Stack, StackOptions

# A run is done in seconds here; this only tells "slow" from "hung".
RUN_BOUND_SECONDS = 120
FAILURE_STATUSES = [429, 500, 502, 503, 504]

STORM_USERS = 300
STORM_EDITS = 20
# The emulator draws drops from an RNG seeded with this: with seed 12 the
# first request it answers has its connection cut, so a run sees at least one.
STORM_SEED = 12

SLOW_USERS = 40
SLOW_EDITS = 5
# Above the smallest timeout the extender accepts (1 s), so a clean run on a
# busy machine does not time out; the latency is well above it.
TIMEOUT_SECONDS = 2
LATENCY_MS = 5000

# A field edited in Delve -> (the value for the i-th edit).
EDITS: dict[str, Callable[[int], Any]] = {
    "aboutMe": lambda i: f"Edited in Delve while Graph struggled ({i})",
    "skills": lambda i: [f"Recovery drill {i}"],
}

LobFor = Callable[[Stack], LobClient]


def count(run: dict[str, Any], name: str) -> int:
    # proto3 JSON leaves zero counts out; int64 counts come as strings.
    return int(run.get("counts", {}).get(name, 0))


def edit_users(stack: Stack, user_ids: list[str]) -> dict[str, tuple[str, Any]]:
    """Edits each user in Delve, alternating fields; answers user -> (field, value)."""
    fields = list(EDITS)
    edits: dict[str, tuple[str, Any]] = {}
    for i, user_id in enumerate(user_ids):
        field = fields[i % len(fields)]
        value = EDITS[field](i)
        edit_in_delve(stack.emulator_url, stack.ca_file, user_id, **{field: value})
        edits[user_id] = (field, value)
    return edits


def assert_published_once(events: list[dict[str, Any]], edits: dict[str, tuple[str, Any]]) -> None:
    """Exactly one UPDATED event per edited user, with the edited field and
    value, under its own event id; nothing else."""
    repeated = [i for i, n in Counter(e["eventId"] for e in events).items() if n > 1]
    assert not repeated, f"event ids logged more than once: {repeated}"
    assert [e for e in events if e["kind"] == "DELETED"] == [], "a user was deleted"
    per_user = Counter(e["userId"] for e in events)
    assert per_user == Counter(list(edits)), (
        f"unedited users with events: {sorted(set(per_user) - set(edits))}; "
        f"edited users without one: {sorted(set(edits) - set(per_user))}; "
        f"users with several: {sorted(u for u, n in per_user.items() if n > 1)}"
    )
    for event in events:
        field, value = edits[event["userId"]]
        assert event["kind"] == "UPDATED", event
        assert event["origin"] == "SHAREPOINT", event
        assert event["changedFields"] == [field], event
        assert event["after"][field] == value, event


def failed_user_ids(stack: Stack, run: dict[str, Any]) -> list[str]:
    """The users a PARTIAL run could not read, as its snapshot manifest names them."""
    manifest = json.loads((stack.snapshot_store / run["snapshot"]).read_text())
    return [str(uid) for uid in manifest["failedUserIds"]]


@pytest.mark.parametrize(
    ("max_attempts", "outcomes"),
    [
        # The default: retries absorb the storm (PARTIAL only if a profile
        # is unlucky eight times in a row).
        (8, ("SUCCEEDED", "PARTIAL")),
        # Too few to absorb it: some profiles run out of attempts. The seed
        # lets the user list through on its second attempt.
        (2, ("PARTIAL",)),
    ],
    ids=["8-attempts", "2-attempts"],
)
def test_a_storm_of_graph_failures_loses_and_invents_nothing(
    tmp_path: pathlib.Path, lob_for: LobFor, max_attempts: int, outcomes: tuple[str, ...]
) -> None:
    options = StackOptions(
        state_dir=tmp_path,
        users=STORM_USERS,
        seed=23,
        env={"GRAPH_MAX_ATTEMPTS": str(max_attempts)},
    )
    with Stack(options) as stack:
        lob = lob_for(stack)
        first = lob.sync_and_wait(timeout=RUN_BOUND_SECONDS)
        assert first["state"] == "SUCCEEDED", first
        created, cursor = lob.changes()
        assert len(created) == STORM_USERS
        users = sorted(e["userId"] for e in created)
        edits = edit_users(stack, users[:: STORM_USERS // STORM_EDITS][:STORM_EDITS])

        graph_stats(stack, reset=True)
        configure_graph(
            stack,
            failureRate=0.3,
            failureStatuses=FAILURE_STATUSES,
            dropRate=0.05,
            seed=STORM_SEED,
        )
        stormy = lob.sync_and_wait(timeout=RUN_BOUND_SECONDS)
        storm = graph_stats(stack)
        configure_graph(stack, failureRate=0.0, dropRate=0.0)

        # The storm happened: at least 300 operations (one per profile) drew a
        # 30% failure chance (fewer than 50 hits is over five standard
        # deviations off), and the seed cuts a connection.
        assert storm["injectedFailures"] >= 50, storm
        assert storm["droppedConnections"] >= 1, storm

        assert stormy["state"] in outcomes, stormy
        assert count(stormy, "deleted") == 0 and count(stormy, "held_deletes") == 0, stormy
        left_behind: list[str] = []
        if stormy["state"] == "PARTIAL":
            left_behind = failed_user_ids(stack, stormy)
            assert len(left_behind) == count(stormy, "failed") > 0, stormy
            assert f"{len(left_behind)} profile(s) could not be read" in stormy["error"]
        else:
            assert count(stormy, "failed") == 0, stormy
        storm_events, cursor = lob.changes(cursor)
        assert_published_once(
            storm_events, {u: e for u, e in edits.items() if u not in left_behind}
        )

        # Graph healthy again: nothing invented, nothing lost.
        calm = lob.sync_and_wait(timeout=RUN_BOUND_SECONDS)
        assert calm["state"] == "SUCCEEDED", calm
        assert count(calm, "deleted") == 0 and count(calm, "created") == 0, calm
        assert count(calm, "unchanged") + count(calm, "updated") == STORM_USERS, calm
        calm_events, _ = lob.changes(cursor)
        assert_published_once(calm_events, {u: e for u, e in edits.items() if u in left_behind})


@pytest.mark.parametrize(
    ("late", "outcome"),
    [
        # Every answer late: the user list, read first, times out, so no profile is read.
        ("latencyMs", "FAILED"),
        # Only profile reads ($batch) late: every user is listed, none is read.
        ("batchLatencyMs", "PARTIAL"),
    ],
)
def test_graph_slower_than_the_timeout_fails_the_run_without_hanging(
    tmp_path: pathlib.Path, lob_for: LobFor, late: str, outcome: str
) -> None:
    options = StackOptions(
        state_dir=tmp_path,
        users=SLOW_USERS,
        seed=29,
        # Read by the extender only.
        env={"GRAPH_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS), "GRAPH_MAX_ATTEMPTS": "2"},
    )
    with Stack(options) as stack:
        lob = lob_for(stack)
        first = lob.sync_and_wait(timeout=RUN_BOUND_SECONDS)
        assert first["state"] == "SUCCEEDED", first
        created, cursor = lob.changes()
        users = sorted(e["userId"] for e in created)
        edits = edit_users(stack, users[:: SLOW_USERS // SLOW_EDITS][:SLOW_EDITS])

        configure_graph(stack, **{late: LATENCY_MS})
        slow = lob.sync_and_wait(timeout=RUN_BOUND_SECONDS)
        configure_graph(stack, **{late: 0})

        assert slow["state"] == outcome, slow
        if outcome == "PARTIAL":
            # Nobody was read, so nobody is deleted; the manifest names them all.
            assert count(slow, "users") == SLOW_USERS == count(slow, "failed"), slow
            assert sorted(failed_user_ids(stack, slow)) == users
        # What an operator reading the run record is told.
        record = lob.http.get(f"/v1/syncs/{slow['runId']}")
        assert record.status_code == 200, record.text
        assert record.json()["state"] == slow["state"]
        reason = record.json()["error"]
        assert "Graph" in reason and "timeout" in reason.lower(), reason
        assert "\n" not in reason and "debug_error_string" not in reason, reason
        assert count(slow, "deleted") == 0, slow
        slow_events, _ = lob.changes(cursor)
        assert [e for e in slow_events if e["kind"] == "DELETED"] == []

        # The baseline was not moved: the healthy run finds every edit again,
        # and the LOB app holds each once (a repeat of an id the failed run
        # published would be dropped by the notifier).
        healthy = lob.sync_and_wait(timeout=RUN_BOUND_SECONDS)
        assert healthy["state"] == "SUCCEEDED", healthy
        assert count(healthy, "deleted") == 0, healthy
        assert count(healthy, "updated") == SLOW_EDITS, healthy
        events, _ = lob.changes(cursor)
        assert_published_once(events, edits)
