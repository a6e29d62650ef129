"""Throttling of the identity and access service, as documented in "Microsoft Graph
service-specific throttling limits" (identity and access service limits):
https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits
and "Microsoft Graph throttling guidance": https://learn.microsoft.com/en-us/graph/throttling

Time is a fake clock here: tests move it forward instead of sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from emulator_helpers import BASE_URL, assert_graph_error, bearer, mint, nth_user

from devtools.graph_emulator.app import create_app
from devtools.graph_emulator.costs import Cost, cost_of
from devtools.graph_emulator.defaults import DEFAULT_TENANT_ID, GRAPH_RESOURCE
from devtools.graph_emulator.signing_key import SigningKey
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.throttle import SlidingWindow, Throttle, format_retry_after

OTHER_APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttled_state(signing_key: SigningKey, clock: FakeClock) -> EmulatorState:
    state = EmulatorState.build(users=60, seed=11, signing_key=signing_key)
    state.throttle = Throttle(clock=clock)
    return state


@pytest.fixture
async def http(throttled_state: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(throttled_state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def graph_headers(http: httpx.AsyncClient, **claims: Any) -> dict[str, str]:
    """A Graph token: an app token with User.ReadWrite.All unless ``user`` is given."""
    if "user" not in claims:
        claims.setdefault("roles", ["User.ReadWrite.All"])
    return bearer(await mint(http, audience=GRAPH_RESOURCE, **claims))


def user_ids(state: EmulatorState, count: int) -> list[str]:
    return [u["id"] for u in state.store.page_after(None, count)[0]]


def batch_of(ids: list[str]) -> dict[str, Any]:
    return {
        "requests": [
            {"id": str(i), "method": "GET", "url": f"/users/{user_id}?$select=id,skills"}
            for i, user_id in enumerate(ids)
        ]
    }


@pytest.mark.parametrize(
    ("method", "url", "units"),
    [
        ("GET", "/v1.0/users", "2"),  # GET users: base cost 2
        ("GET", "/v1.0/users?$select=id", "1"),  # $select takes 1 off
        ("GET", "/v1.0/users?$top=999&$select=id", "1"),
        ("GET", "/v1.0/users?$top=5", "1"),  # $top under 20 takes 1 off
        ("GET", "/v1.0/users?$top=5&$select=id", "1"),  # never below 1
        ("GET", "/v1.0/users/{id}", "1"),  # any other identity path: 1
        ("GET", "/v1.0/users/{id}?$select=skills", "1"),
    ],
)
async def test_resource_unit_cost_per_request(
    http: httpx.AsyncClient, throttled_state: EmulatorState, method: str, url: str, units: str
) -> None:
    """Base request costs, the $select/$top modifiers and the x-ms-resource-unit header."""
    headers = await graph_headers(http)
    user_id = user_ids(throttled_state, 1)[0]
    response = await http.request(method, url.format(id=user_id), headers=headers)
    assert response.status_code == 200
    assert response.headers["x-ms-resource-unit"] == units
    stats = (await http.get("/_emulator/stats")).json()
    assert stats["resourceUnits"] == int(units) and stats["writes"] == 0


async def test_a_write_costs_a_unit_and_a_write(
    http: httpx.AsyncClient, throttled_state: EmulatorState
) -> None:
    """PATCH on any identity path costs 1 resource unit and 1 write."""
    headers = await graph_headers(http)
    user_id = user_ids(throttled_state, 1)[0]
    response = await http.patch(f"/v1.0/users/{user_id}", json={"city": "Oslo"}, headers=headers)
    assert response.status_code == 204
    assert response.headers["x-ms-resource-unit"] == "1"
    stats = (await http.get("/_emulator/stats")).json()
    assert (stats["resourceUnits"], stats["writes"]) == (1, 1)


async def test_burst_above_quota_is_answered_429_with_retry_after(
    http: httpx.AsyncClient, throttled_state: EmulatorState, clock: FakeClock
) -> None:
    """Over the quota: 429 TooManyRequests with Retry-After (seconds, may be fractional),
    x-ms-throttle-scope and x-ms-throttle-information; close to it, the answers carry
    x-ms-throttle-limit-percentage."""
    await http.put("/_emulator/config", json={"quotaPer10s": 10})
    headers = await graph_headers(http)
    user_id = user_ids(throttled_state, 1)[0]
    answers = []
    for _ in range(12):
        answers.append(await http.get(f"/v1.0/users/{user_id}", headers=headers))
        clock.advance(0.25)
    assert [r.status_code for r in answers] == [200] * 10 + [429] * 2
    assert "x-ms-throttle-limit-percentage" not in answers[7].headers  # 8 of 10: not above
    assert answers[8].headers["x-ms-throttle-limit-percentage"] == "0.90"
    assert answers[9].headers["x-ms-throttle-limit-percentage"] == "1.00"
    refused = answers[10]
    assert_graph_error(refused, 429, "TooManyRequests")
    # The refused request is charged too, so a retry must fit beside that charge: two units
    # have to leave the window, the one spent at t=0 and the one at t=0.25 (its 100 ms slot
    # ends at 0.3 s), which leaves at 10.3 s. It is now t=2.5 s.
    assert 7.8 < float(refused.headers["Retry-After"]) <= 7.9
    assert refused.headers["x-ms-throttle-scope"] == (
        f"Tenant_Application/ReadWrite/{throttled_state.client_id}/{DEFAULT_TENANT_ID}"
    )
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"


async def test_a_client_that_waits_as_told_is_not_throttled_again(
    http: httpx.AsyncClient, throttled_state: EmulatorState, clock: FakeClock
) -> None:
    """Waiting the longest Retry-After of the refused items, then retrying them together,
    succeeds: a client that waits as told is never throttled twice in a row."""
    await http.put("/_emulator/config", json={"quotaPer10s": 20})
    headers = await graph_headers(http)
    ids = user_ids(throttled_state, 60)
    # The budget is spent a unit at a time, so it comes back a unit at a time too.
    for user_id in ids[:20]:
        assert (await http.get(f"/v1.0/users/{user_id}", headers=headers)).status_code == 200
        clock.advance(0.3)
    pending = ids[20:]
    while pending:
        batch, pending = pending[:12], pending[12:]
        for attempt in range(3):
            response = await http.post("/v1.0/$batch", json=batch_of(batch), headers=headers)
            refused = [r for r in response.json()["responses"] if r["status"] == 429]
            if not refused:
                break
            assert attempt == 0, "throttled twice in a row after waiting as told"
            wait = max(float(r["headers"]["Retry-After"]) for r in refused)
            batch = [batch[int(r["id"])] for r in refused]
            clock.advance(wait)
    stats = (await http.get("/_emulator/stats")).json()
    assert stats["throttled"] > 0  # the budget did bite
    assert stats["peakResourceUnitsPer10s"] == 20  # and was never exceeded
    assert stats["resourceUnits"] == 60


async def test_retrying_early_keeps_an_app_throttled(
    http: httpx.AsyncClient, throttled_state: EmulatorState, clock: FakeClock
) -> None:
    """Throttled requests are charged like any other: "Avoid immediate retries, because all
    requests accrue against your usage limits", and Graph "continues to log resource usage
    while a client is being throttled" (https://learn.microsoft.com/en-us/graph/throttling).
    A client that retries every half second, ignoring Retry-After, is still refused 20 s
    later (a window that charged only admitted requests would have let it in at 10.1 s),
    while a client that then waits its Retry-After gets through."""
    await http.put("/_emulator/config", json={"quotaPer10s": 10})
    headers = await graph_headers(http)
    url = f"/v1.0/users/{user_ids(throttled_state, 1)[0]}"
    for _ in range(10):
        assert (await http.get(url, headers=headers)).status_code == 200
    eager = []
    for _ in range(40):  # 20 s of retries, two a second
        clock.advance(0.5)
        eager.append(await http.get(url, headers=headers))
    assert {r.status_code for r in eager} == {429}
    stats = (await http.get("/_emulator/stats")).json()
    assert stats["throttled"] == 40 and stats["throttledResourceUnits"] == 40
    assert stats["resourceUnits"] == 10 and stats["peakResourceUnitsPer10s"] == 10
    clock.advance(float(eager[-1].headers["Retry-After"]))
    assert (await http.get(url, headers=headers)).status_code == 200


async def test_write_quota(
    http: httpx.AsyncClient, throttled_state: EmulatorState, clock: FakeClock
) -> None:
    """Writes also count against 3,000 per 150 s (scaled down here); reads still pass."""
    await http.put("/_emulator/config", json={"writeQuotaPer150s": 3})
    headers = await graph_headers(http)
    user_id = user_ids(throttled_state, 1)[0]
    statuses = []
    for n in range(4):
        response = await http.patch(
            f"/v1.0/users/{user_id}", json={"city": f"City {n}"}, headers=headers
        )
        statuses.append(response.status_code)
    assert statuses == [204, 204, 204, 429]
    assert response.headers["x-ms-throttle-scope"].startswith("Tenant_Application/Write/")
    assert response.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert 149 <= float(response.headers["Retry-After"]) <= 151
    # Reads are throttled by the resource-unit quota only.
    assert (await http.get(f"/v1.0/users/{user_id}", headers=headers)).status_code == 200
    clock.advance(float(response.headers["Retry-After"]))
    again = await http.patch(f"/v1.0/users/{user_id}", json={"city": "Bergen"}, headers=headers)
    assert again.status_code == 204
    assert (await http.get("/_emulator/stats")).json()["peakWritesPer150s"] == 3


async def test_budget_is_per_app_per_tenant(
    http: httpx.AsyncClient, throttled_state: EmulatorState
) -> None:
    """Every client of one app shares its budget (several extender processes, several
    tokens); another app has its own."""
    await http.put("/_emulator/config", json={"quotaPer10s": 6})
    first, second = await graph_headers(http), await graph_headers(http)
    assert first != second  # two tokens, as two processes would hold
    other_app = await graph_headers(http, clientId=OTHER_APP)
    user_id = user_ids(throttled_state, 1)[0]
    url = f"/v1.0/users/{user_id}"
    statuses = [(await http.get(url, headers=h)).status_code for h in [first, second] * 4]
    assert statuses == [200] * 6 + [429] * 2
    other = await http.get(url, headers=other_app)
    assert other.status_code == 200
    user = nth_user(throttled_state, 3)
    delegated = await graph_headers(http, user=user["userPrincipalName"])
    # A user token of the same app spends the same app's budget.
    refused = await http.get(url, headers=delegated)
    assert_graph_error(refused, 429)
    assert OTHER_APP not in refused.headers["x-ms-throttle-scope"]


async def test_quota_follows_tenant_size_and_configuration(signing_key: SigningKey) -> None:
    """S (under 50 users): 3,500, M (50-500): 5,000, L (over 500): 8,000 per 10 s; the
    write quota is 3,000 per 150 s; both can be scaled for tests and benchmarks."""
    for users, quota in {49: 3500, 50: 5000, 500: 5000, 501: 8000}.items():
        state = EmulatorState.build(users=users, seed=1, signing_key=signing_key)
        assert state.config.quota_per_10s == quota
        assert state.config.write_quota_per_150s == 3000
    scaled = EmulatorState.build(
        users=10, signing_key=signing_key, quota_per_10s=50_000, write_quota_per_150s=9
    )
    assert (scaled.config.quota_per_10s, scaled.config.write_quota_per_150s) == (50_000, 9)


@pytest.mark.parametrize(
    ("method", "route", "options", "units", "writes"),
    [
        ("GET", "GET /users", {}, 2, 0),
        ("GET", "GET /users", {"$select": "id"}, 1, 0),
        ("GET", "GET /users", {"$expand": "manager"}, 3, 0),
        ("GET", "GET /users", {"$top": "19"}, 1, 0),
        ("GET", "GET /users", {"$top": "20"}, 2, 0),
        ("GET", "GET /users/{id}", {"$expand": "manager", "$select": "id"}, 1, 0),
        ("GET", "GET /me", {"$expand": "manager"}, 2, 0),
        ("PATCH", "PATCH /users/{id}", {}, 1, 1),
        ("PATCH", "PATCH /me", {"$select": "id"}, 1, 1),
    ],
)
def test_cost_rules(
    method: str, route: str, options: dict[str, str], units: int, writes: int
) -> None:
    """$select -1, $expand +1, $top under 20 -1, never below 1; writes cost one write."""
    assert cost_of(method, route, options) == Cost(units, writes)


def test_sliding_window_never_admits_more_than_the_limit_in_any_window() -> None:
    window = SlidingWindow(10.0)
    admitted: list[float] = []
    now = 0.0
    while now < 40:
        if window.wait_for(now, 1, 50) == 0:
            window.record(now, 1)
            admitted.append(now)
        now += 0.037
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 10) <= 50
    assert len(admitted) >= 3 * 50  # and it does let the budget through again


def test_retry_after_is_rounded_up() -> None:
    assert format_retry_after(0.01) == "0.1"
    assert format_retry_after(2.01) == "2.1"
    assert format_retry_after(7.0) == "7"
    assert format_retry_after(59.95) == "60"
    assert format_retry_after(149.2) == "150"
