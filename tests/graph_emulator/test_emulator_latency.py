"""Latency of profile reads: SharePoint-backed properties ("Properties stored outside the main
data store", https://learn.microsoft.com/en-us/graph/api/resources/users?view=graph-rest-1.0)
are read per user, so each read answers after its own latency, drawn from a log-normal fitted
to a median and a p99; a JSON batch answers once its slowest item is done
(https://learn.microsoft.com/en-us/graph/json-batching).

The distribution is checked through the emulator's own sampler; the timing tests use short
latencies and assert lower bounds only, plus one generous upper bound that separates
"side by side" from "one after the other".
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
from emulator_helpers import nth_user

from devtools.graph_emulator.latency import ProfileLatency
from devtools.graph_emulator.state import EmulatorState

PROFILE_SELECT = "$select=id,aboutMe,skills"


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


def test_draws_follow_the_configured_median_and_p99(state: EmulatorState) -> None:
    """20,000 draws of the emulator's own sampler (300 ms / 1,500 ms): median and p99 within
    a few percent of the figures asked for, and every draw positive."""
    state.config = type(state.config)(
        quota_per_10s=5000, profile_latency_median_ms=300, profile_latency_p99_ms=1500
    )
    draws = [state.profile_read_delay() for _ in range(20_000)]
    assert min(draws) > 0
    assert 0.285 <= _quantile(draws, 0.5) <= 0.315
    assert 1.35 <= _quantile(draws, 0.99) <= 1.65
    # The tail is long but not absurd: p99.9 of this log-normal is about 2.9 s.
    assert max(draws) < 10


def test_equal_median_and_p99_give_a_fixed_latency_and_zero_none() -> None:
    fixed = ProfileLatency.fitted(800, 800)
    assert fixed is not None
    rng = random.Random(1)
    assert {round(fixed.draw(rng), 9) for _ in range(100)} == {0.8}
    assert ProfileLatency.fitted(0, 0) is None


def test_draws_are_reproducible_from_the_seed(signing_key: Any) -> None:
    def draws(seed: int) -> list[float]:
        state = EmulatorState.build(users=5, seed=seed, signing_key=signing_key)
        state.set_config(
            type(state.config)(
                quota_per_10s=5000,
                profile_latency_median_ms=300,
                profile_latency_p99_ms=1500,
                seed=seed,
            )
        )
        return [state.profile_read_delay() for _ in range(50)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


async def test_only_profile_reads_are_slow(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """A read that selects SharePoint-backed properties waits; a directory-only read, the
    user list and a read of an unknown user do not."""
    await client.put(
        "/_emulator/config", json={"profileLatencyMedianMs": 1500, "profileLatencyP99Ms": 1500}
    )
    user_id = nth_user(state, 0)["id"]
    started = time.perf_counter()
    for url in (
        f"/v1.0/users/{user_id}?$select=id,displayName",
        f"/v1.0/users/{user_id}",
        "/v1.0/users?$top=5",
        "/v1.0/users/00000000-0000-0000-0000-000000000000?$select=skills",
    ):
        assert (await client.get(url, headers=app_headers)).status_code in (200, 404)
    quick = time.perf_counter() - started
    started = time.perf_counter()
    profile = await client.get(f"/v1.0/users/{user_id}?{PROFILE_SELECT}", headers=app_headers)
    assert profile.status_code == 200 and "skills" in profile.json()
    slow = time.perf_counter() - started
    assert slow >= 1.5 > 1.0 > quick


async def test_a_batch_answers_when_its_slowest_item_is_done(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """Twenty profile reads in one batch each draw their own latency; the batch takes as
    long as the slowest of them, not their sum."""
    await client.put(
        "/_emulator/config", json={"profileLatencyMedianMs": 100, "profileLatencyP99Ms": 600}
    )
    # The same generator, copied: the latencies the twenty items are about to draw.
    upcoming = random.Random()
    upcoming.setstate(state.latency_rng.getstate())
    profile = state.config.profile_latency
    assert profile is not None
    expected = [profile.draw(upcoming) for _ in range(20)]
    items = [
        {
            "id": str(n),
            "method": "GET",
            "url": f"/users/{nth_user(state, n)['id']}?{PROFILE_SELECT}",
        }
        for n in range(20)
    ]
    started = time.perf_counter()
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=app_headers)
    elapsed = time.perf_counter() - started
    assert [r["status"] for r in response.json()["responses"]] == [200] * 20
    assert elapsed >= max(expected)
    assert sum(expected) > 1.5 and elapsed < sum(expected) - 0.5  # side by side
    assert state.latency_rng.getstate() == upcoming.getstate()  # one draw per item
    # The twenty answers waited side by side, and the stats say so.
    assert (await client.get("/_emulator/stats")).json()["peakOperationsWaiting"] == 20


async def test_a_dependency_chain_adds_up(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """dependsOn runs a request after the one it names, so a chain of profile reads takes
    the sum of its latencies; an independent read in the same batch overlaps the chain."""
    await client.put(
        "/_emulator/config", json={"profileLatencyMedianMs": 400, "profileLatencyP99Ms": 400}
    )
    ids = [nth_user(state, n)["id"] for n in range(4)]
    items = [
        {"id": "a", "method": "GET", "url": f"/users/{ids[0]}?{PROFILE_SELECT}"},
        {
            "id": "b",
            "method": "GET",
            "url": f"/users/{ids[1]}?{PROFILE_SELECT}",
            "dependsOn": ["a"],
        },
        {
            "id": "c",
            "method": "GET",
            "url": f"/users/{ids[2]}?{PROFILE_SELECT}",
            "dependsOn": ["b"],
        },
        {"id": "d", "method": "GET", "url": f"/users/{ids[3]}?{PROFILE_SELECT}"},
    ]
    started = time.perf_counter()
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=app_headers)
    elapsed = time.perf_counter() - started
    assert {r["status"] for r in response.json()["responses"]} == {200}
    assert 1.2 <= elapsed < 1.2 + 0.4  # three in a row; the fourth beside them
