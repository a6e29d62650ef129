"""Faults on demand: the transient failures Graph documents (429, 500, 502, 503, 504, with
Retry-After), added latency and dropped connections, all reproducible from a seed.

Status codes and their meaning: "Microsoft Graph error responses and resource types"
https://learn.microsoft.com/en-us/graph/errors
Retry-After on throttled and unavailable answers: https://learn.microsoft.com/en-us/graph/throttling
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from emulator_helpers import BASE_URL, assert_graph_error, bearer, first_user, mint

from devtools.graph_emulator.app import create_app
from devtools.graph_emulator.defaults import GRAPH_RESOURCE
from devtools.graph_emulator.signing_key import SigningKey
from devtools.graph_emulator.state import EmulatorState


async def statuses_for(signing_key: SigningKey, config: dict[str, Any], count: int) -> list[int]:
    state = EmulatorState.build(users=30, seed=5, signing_key=signing_key)
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        assert (await http.put("/_emulator/config", json=config)).status_code == 200
        headers = bearer(await mint(http, roles=["User.Read.All"], audience=GRAPH_RESOURCE))
        url = f"/v1.0/users/{first_user(state)['id']}"
        answers = [await http.get(url, headers=headers) for _ in range(count)]
    for answer in answers:
        if answer.status_code != 200:
            assert_graph_error(answer, answer.status_code)
            assert float(answer.headers["Retry-After"]) > 0
    return [a.status_code for a in answers]


async def test_failure_rate_draws_from_the_configured_statuses(signing_key: SigningKey) -> None:
    statuses = await statuses_for(signing_key, {"failureRate": 0.5, "seed": 3}, 200)
    counts = Counter(statuses)
    assert set(counts) == {200, 429, 500, 502, 503, 504}
    assert 60 <= counts[200] <= 140
    only = await statuses_for(signing_key, {"failureRate": 1.0, "failureStatuses": [502, 504]}, 40)
    assert set(only) == {502, 504}


async def test_faults_are_reproducible_from_the_seed(signing_key: SigningKey) -> None:
    config = {"failureRate": 0.3, "seed": 99}
    first = await statuses_for(signing_key, config, 60)
    again = await statuses_for(signing_key, config, 60)
    other = await statuses_for(signing_key, {**config, "seed": 100}, 60)
    assert first == again
    assert first != other


async def test_injected_429_names_load_not_the_quota(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """429 may come below the limit; it carries Retry-After like any throttled answer."""
    await client.put("/_emulator/config", json={"failureRate": 1.0, "failureStatuses": [429]})
    response = await client.get(f"/v1.0/users/{first_user(state)['id']}", headers=app_headers)
    assert_graph_error(response, 429, "TooManyRequests")
    assert response.headers["x-ms-throttle-information"] == "CPULimitExceeded"
    stats = (await client.get("/_emulator/stats")).json()
    assert stats["injectedFailures"] == 1 and stats["throttled"] == 0
    assert stats["resourceUnits"] == 0
