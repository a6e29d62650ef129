"""The Graph budget shared through Redis: no 10-second window over budget,
whether one replica or several draw from it."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from devtools.processes import free_port
from services.profile_extender.adaptive import AdaptiveLimit
from services.profile_extender.rate_budget import RateBudget


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """The budgets are shared through Redis: on one node and on a cluster alike."""
    return any_redis_url


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
    await first.back_off(3.0)
    assert await first.reserve(1) >= 2.9
    assert await second.reserve(1) >= 2.9


async def test_without_redis_a_replica_paces_itself() -> None:
    unreachable = aioredis.Redis(port=free_port(), socket_connect_timeout=0.5, retry=None)
    budget = RateBudget(unreachable, "test:down", budget_per_10s=200)
    schedule = [(await budget.reserve(20), 20) for _ in range(30)]
    assert max_units_in_any_window(schedule) <= 200
    await unreachable.aclose()


async def test_requests_in_flight_follow_the_rate_and_the_latency() -> None:
    # 40 $batch requests a second (the largest tier's budget, 20 users each).
    limit = AdaptiveLimit(rate=lambda: 40.0, maximum=256)
    for _ in range(100):
        limit.observe(0.05)
    fast = limit.limit
    for _ in range(100):
        limit.observe(1.5)
    slow = limit.limit
    # Little's law: 40/s at 1.5 s each is 60 in flight; at 50 ms, 2.
    assert 60 <= slow <= 100
    assert 2 <= fast <= 10
    for _ in range(100):
        limit.observe(30.0)
    assert limit.limit == 256  # the safety bound holds, however slow Graph is


async def test_adaptive_limit_halves_on_429_and_grows_back() -> None:
    limit = AdaptiveLimit(rate=lambda: 40.0, maximum=256)
    for _ in range(100):
        limit.observe(1.0)
    wanted = limit.limit
    limit.throttled()
    assert limit.limit == wanted // 2
    limit.throttled()  # the same burst of 429s counts once
    assert limit.limit == wanted // 2
    for _ in range(wanted // 2):
        limit.succeeded()
    assert limit.limit == wanted // 2 + 1
    for _ in range(50 * wanted):
        limit.succeeded()
    assert limit.limit == wanted  # back to what the rate asks, not beyond


async def test_interactive_reads_do_not_queue_behind_a_sync(redis_client: aioredis.Redis) -> None:
    budget = RateBudget(redis_client, "test:priority", budget_per_10s=4_000)
    rate = budget.steady_rate_per_second
    loop = asyncio.get_running_loop()
    started = loop.time()
    until = started + 2.5
    sent: list[tuple[float, int]] = []
    interactive_waits: list[float] = []

    async def sync_reader() -> None:
        # A sync keeps 16 $batch requests of 20 users waiting for the budget.
        while loop.time() < until:
            await budget.spend(20, bulk=True)
            sent.append((loop.time(), 20))

    async def lob_reader() -> None:
        await asyncio.sleep(0.5)  # the sync has filled the budget by now
        while loop.time() < until:
            wait = await budget.reserve(1)
            interactive_waits.append(wait)
            await asyncio.sleep(wait)
            sent.append((loop.time(), 1))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(sync_reader() for _ in range(16)), lob_reader())
    bulk_units = sum(units for _, units in sent if units == 20)
    # The sync used the budget...
    assert bulk_units >= 0.8 * rate * 2.5
    # ...yet a LOB read never waited behind the sync's 320 queued units
    # (over 0.8 s at this rate): it had room at once.
    assert len(interactive_waits) >= 20
    assert max(interactive_waits) < 0.1, interactive_waits
    # Together they stay inside the rate plus the allowances, in every second.
    allowance = budget.burst_units + budget.headroom_units
    assert max_units_in_any_window(sent, window=1.0) <= rate + allowance


async def test_a_sync_gives_way_while_interactive_reads_fill_the_budget(
    redis_client: aioredis.Redis,
) -> None:
    budget = RateBudget(redis_client, "test:give-way", budget_per_10s=400)
    # Interactive reads have booked the next 6 s of the budget (the last of them wait
    # 6 s less their allowance of 2.5 s).
    booked = await budget.reserve(int(6 * budget.steady_rate_per_second))
    assert 3 < booked < 4
    # A bulk read reserves nothing and is told to come back once the booking has passed.
    assert await budget.try_reserve(20) > 5
    # Nothing was booked for it: the next interactive read queues right after the booking.
    assert await budget.reserve(1) < booked + 0.1


async def test_a_429_despite_the_budget_lowers_the_rate_until_quiet_windows_restore_it(
    redis_client: aioredis.Redis,
) -> None:
    """Graph counts a request when it arrives (https://learn.microsoft.com/graph/throttling):
    requests delayed on the way can arrive together and overfill a window the schedule
    kept. Being throttled anyway, a replica sends a little slower for a while."""
    now = [1000.0]
    budget = RateBudget(redis_client, "test:step-down", budget_per_10s=8000, clock=lambda: now[0])
    full = budget.steady_rate_per_second
    await budget.back_off(0.0)
    await budget.back_off(0.0)  # the same burst of 429s: one step
    assert budget.steady_rate_per_second == pytest.approx(full * 0.9, rel=0.01)
    now[0] += 10
    await budget.back_off(0.0)  # throttled again a window later: another step
    lowered = budget.steady_rate_per_second
    assert lowered == pytest.approx(full * 0.81, rel=0.01)
    for _ in range(30):  # quiet windows bring the rate back, a step each
        now[0] += 10
        await budget.reserve(1)
    assert budget.steady_rate_per_second == pytest.approx(full, rel=0.001)


async def test_a_part_of_the_budget_never_takes_more_than_its_share(
    redis_client: aioredis.Redis,
) -> None:
    """The differ's re-reads of recently edited users (HOT_SHARE) draw from a
    20% part, shared by every replica, and from the whole budget as well."""
    budget = RateBudget(redis_client, "test:whole", budget_per_10s=1_000)
    replicas = [
        budget.part(20),
        RateBudget(redis_client, "test:whole", budget_per_10s=1_000).part(20),
    ]
    schedule = [(await replicas[i % 2].reserve(20), 20) for i in range(40)]  # 800 units asked
    assert max_units_in_any_window(schedule) <= 200
    assert budget.part(20) is replicas[0]  # one part per share, kept in step:
    budget.set_budget(2_000)
    assert budget.part(20).budget_per_10s == 400
