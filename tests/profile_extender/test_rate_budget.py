"""The Graph budget shared through Redis: no 10-second window over budget,
whether one replica or several draw from it."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.common.processes import free_port
from services.profile_extender.adaptive import AdaptiveLimit
from services.profile_extender.rate_budget import RateBudget


def max_units_in_any_window(schedule: list[tuple[float, int]], window: float = 10.0) -> int:
    """Largest sum of units sent within any `window` seconds."""
    schedule = sorted(schedule)
    best = 0
    for index, (start, _) in enumerate(schedule):
        total = sum(units for at, units in schedule[index:] if at < start + window)
        best = max(best, total)
    return best


async def test_reservations_never_put_more_than_the_budget_in_a_window(
    redis_client: aioredis.Redis,
) -> None:
    budget = RateBudget(redis_client, "test:budget", budget_per_10s=400)
    schedule = [(await budget.reserve(20), 20) for _ in range(60)]  # 1,200 units at once
    assert max_units_in_any_window(schedule) <= 400
    # The burst allowance goes out at once, the rest is paced: not throttled to zero.
    assert schedule[0][0] == 0.0
    last_send = max(at for at, _ in schedule)
    assert last_send < 1200 / budget.steady_rate_per_second + 1


async def test_two_replicas_share_one_budget(redis_client: aioredis.Redis) -> None:
    first = RateBudget(redis_client, "test:shared", budget_per_10s=300)
    second = RateBudget(redis_client, "test:shared", budget_per_10s=300)
    schedule = []
    for _ in range(30):
        schedule.append((await first.reserve(20), 20))
        schedule.append((await second.reserve(20), 20))
    assert max_units_in_any_window(schedule) <= 300


async def test_a_429_makes_every_replica_wait(redis_client: aioredis.Redis) -> None:
    first = RateBudget(redis_client, "test:pause", budget_per_10s=10_000)
    second = RateBudget(redis_client, "test:pause", budget_per_10s=10_000)
    first.back_off(3.0)
    assert await first.reserve(1) >= 2.9
    assert await second.reserve(1) >= 2.9


async def test_without_redis_a_replica_paces_itself() -> None:
    unreachable = aioredis.Redis(port=free_port(), socket_connect_timeout=0.5, retry=None)
    budget = RateBudget(unreachable, "test:down", budget_per_10s=200)
    schedule = [(await budget.reserve(20), 20) for _ in range(30)]
    assert max_units_in_any_window(schedule) <= 200
    await unreachable.aclose()


async def test_adaptive_limit_halves_on_429_and_grows_back() -> None:
    limit = AdaptiveLimit(initial=8, maximum=16)
    limit.throttled()
    assert limit.limit == 4
    limit.throttled()  # the same burst of 429s counts once
    assert limit.limit == 4
    for _ in range(4):
        limit.succeeded()
    assert limit.limit == 5
    for _ in range(200):
        limit.succeeded()
    assert limit.limit == 16
