"""One Graph budget shared by every extender replica, kept in Redis.

Graph throttles per app per tenant over a sliding 10-second window, so
replicas must pace themselves together. The budget is a GCRA (generic cell
rate algorithm) in one Lua script: each request reserves its resource units
and is told how long to wait before sending. With a rate of
(budget - burst) / 10 s and a burst allowance of `burst` units, no 10-second
window ever holds more than `budget` units.

    budget = RateBudget(redis, key, budget_per_10s=3325)
    await budget.spend(20)          # waits as long as needed, then returns
    budget.back_off(2.5)            # Graph said 429 Retry-After 2.5: everyone waits

If Redis is unreachable the replica paces itself alone with the same
parameters (and logs it), so a Redis restart slows nothing down to zero.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

__all__ = ["RateBudget"]

log = logging.getLogger(__name__)

# Budget use across replicas: sum(rate(units_total[1m])) * 10 / max(units_per_10s).
BUDGET_UNITS = Gauge(
    "profilesync_graph_budget_units_per_10s", "Graph resource units the budget allows per 10 s"
)
UNITS_SPENT = Counter(
    "profilesync_graph_budget_units_total", "Graph resource units reserved by this replica"
)
WAITED = Counter(
    "profilesync_graph_budget_wait_seconds_total",
    "Seconds requests waited for the shared Graph budget (or a Retry-After pause)",
)

WINDOW_SECONDS = 10.0
# After Redis fails, how long this replica paces itself before asking again.
REDIS_RETRY_SECONDS = 5.0

# Reserve ARGV[1] units; returns the microseconds to wait before using them.
# ARGV[2] = microseconds per unit, ARGV[3] = burst allowance in microseconds,
# ARGV[4] = extra pause in microseconds (after a 429) applied before reserving.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local pause = tonumber(ARGV[4])
-- A pause holds everyone back in full: the burst allowance does not shorten it.
local hold = now + pause + tonumber(ARGV[3])
if pause > 0 and tat < hold then tat = hold end
local new_tat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
local wait = new_tat - now - tonumber(ARGV[3])
if wait < 0 then wait = 0 end
local ttl_ms = math.floor((new_tat - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return math.floor(wait)
"""


class _LocalGcra:
    """The same algorithm in-process, used only while Redis is unreachable."""

    def __init__(self) -> None:
        self.tat = 0.0

    def reserve(self, units: int, interval_us: float, burst_us: float, pause_us: float) -> float:
        now = time.time() * 1e6
        tat = max(self.tat, now)
        if pause_us > 0:
            tat = max(tat, now + pause_us + burst_us)
        self.tat = tat + units * interval_us
        return max(0.0, self.tat - now - burst_us)


class RateBudget:
    def __init__(self, redis: aioredis.Redis, key: str, *, budget_per_10s: int) -> None:
        self._redis = redis
        self._key = key
        self.budget_per_10s = budget_per_10s
        BUDGET_UNITS.set(budget_per_10s)
        # A burst of one $batch at least, a small share of the budget at most:
        # the steady rate is what the budget leaves after the burst.
        self.burst_units = max(20, budget_per_10s // 50)
        steady = max(1, budget_per_10s - self.burst_units)
        self._interval_us = WINDOW_SECONDS * 1e6 / steady
        self._burst_us = self.burst_units * self._interval_us
        self._script = redis.register_script(_RESERVE)
        self._local = _LocalGcra()
        self._pause_us = 0.0
        self._redis_down_until = 0.0

    @property
    def steady_rate_per_second(self) -> float:
        return 1e6 / self._interval_us

    def back_off(self, seconds: float) -> None:
        """Graph throttled us: the next reservation (by any replica) waits this long."""
        self._pause_us = max(self._pause_us, seconds * 1e6)

    async def spend(self, units: int) -> None:
        """Waits until `units` resource units may be sent without exceeding the budget."""
        wait = await self.reserve(units)
        UNITS_SPENT.inc(max(0, units))
        if wait > 0:
            WAITED.inc(wait)
            await asyncio.sleep(wait)

    async def reserve(self, units: int) -> float:
        """Reserves `units` and returns the seconds to wait before using them."""
        if units <= 0:
            return 0.0
        pause, self._pause_us = self._pause_us, 0.0
        if time.monotonic() >= self._redis_down_until:
            args: list[int | str] = [
                units,
                f"{self._interval_us:.3f}",
                f"{self._burst_us:.3f}",
                f"{pause:.0f}",
            ]
            try:
                wait_us = float(await self._script(keys=[self._key], args=args))
            except aioredis.RedisError as error:
                log.warning("Redis unreachable (%s): pacing this replica alone for a while", error)
                # Asking a dead Redis before every request would stall every request.
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            else:
                return wait_us / 1e6
        return self._local.reserve(units, self._interval_us, self._burst_us, pause) / 1e6
