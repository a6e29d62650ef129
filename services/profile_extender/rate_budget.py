"""One Graph budget shared by every extender replica, kept in Redis.

Graph throttles per app per tenant over a sliding 10-second window, so
replicas must pace themselves together. The budget is a GCRA (generic cell
rate algorithm) in one Lua script: each request reserves its resource units
and is told how long to wait before sending. With a rate of
(budget - burst) / 10 s and a burst allowance of `burst` units, no 10-second
window ever holds more than `budget` units.

    budget = RateBudget(redis, key, budget_per_10s=3325)
    await budget.spend(20)              # waits as long as needed, then returns
    await budget.spend(20, bulk=True)   # the same for a sync's reads, behind the LOB's
    await budget.back_off(2.5)          # Graph said 429 Retry-After 2.5: every replica waits
    budget.set_budget(8000)             # the tenant turned out larger: a larger budget
    await budget.part(20).spend(20, bulk=True)   # never more than 20% of the budget

Two priorities share the one budget. A sync reads the whole tenant and would
keep reservations queued far ahead, so a LOB app's single read behind them
would wait seconds. Bulk reads therefore reserve only when they may send at
once within a smaller allowance, and otherwise wait and ask again; interactive
reads reserve with a larger allowance (`headroom_units` more), so they find
room whenever the sync is what fills the budget. Either way one schedule holds
every unit, and no window exceeds the budget.

If Redis is unreachable the replica paces itself alone with the same
parameters (and logs it), so a Redis restart slows nothing down to zero.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

from services.common.errors import RateLimited
from services.common.lua_scripts import LuaScript

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
# Graph counts a request when it arrives; requests sent on schedule but held on
# the way (network, a busy server) can arrive together and overfill a window
# the schedule kept. A 429 despite the budget therefore also lowers this
# replica's rate by THROTTLE_STEP (once a window, down to MIN_SCALE of the
# budget), which then climbs back by RECOVERY_STEP each window without one.
THROTTLE_STEP = 0.9
RECOVERY_STEP = 0.02
MIN_SCALE = 0.5
# After Redis fails, how long this replica paces itself before asking again.
REDIS_RETRY_SECONDS = 5.0

# The GCRA (lua/reserve_units.lua: its header names its keys, arguments and answer).
_RESERVE = LuaScript("services.profile_extender", "reserve_units.lua")


class _LocalGcra:
    """The same algorithm in-process, used only while Redis is unreachable."""

    def __init__(self) -> None:
        self.tat = 0.0

    def reserve(
        self, units: int, interval_us: float, burst_us: float, pause_us: float, only_now: bool
    ) -> float:
        now = time.time() * 1e6
        tat = max(self.tat, now)
        if pause_us > 0:
            tat = max(tat, now + pause_us + burst_us)
        wait = max(0.0, tat + units * interval_us - now - burst_us)
        if only_now and wait > 0:
            self.tat = tat
            return -max(1.0, wait)
        self.tat = tat + units * interval_us
        return wait


class RateBudget:
    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        *,
        budget_per_10s: int,
        clock: Callable[[], float] = time.monotonic,
        metered: bool = True,
    ) -> None:
        self._redis = redis
        self._key = key
        # The tenant's budget reports itself in /metrics; its parts (part()) do not.
        self._metered = metered
        self._parts: dict[int, RateBudget] = {}
        self._script = _RESERVE.register(redis)
        self._local = _LocalGcra()
        self._redis_down_until = 0.0
        self._clock = clock
        # Share of the budget this replica schedules at (see THROTTLE_STEP).
        self.scale = 1.0
        self._scale_changed = clock()
        self._last_cut = -math.inf
        self.set_budget(budget_per_10s)

    def set_budget(self, budget_per_10s: int) -> None:
        """Resource units per 10 s from now on (the schedule already taken stays)."""
        self.budget_per_10s = budget_per_10s
        if self._metered:
            BUDGET_UNITS.set(budget_per_10s)
        self._schedule()

    def part(self, percent: int) -> RateBudget:
        """`percent`% of this budget, under its own key (so every replica
        shares it too), for a kind of read that must never take more: it
        spends there first, then from this budget as any bulk read."""
        units = max(1, self.budget_per_10s * percent // 100)
        part = self._parts.get(percent)
        if part is None:
            part = RateBudget(
                self._redis,
                f"{self._key}:part{percent}",
                budget_per_10s=units,
                clock=self._clock,
                metered=False,
            )
            self._parts[percent] = part
        elif part.budget_per_10s != units:
            part.set_budget(units)
        return part

    def _schedule(self) -> None:
        budget = self.budget_per_10s * self.scale
        # A burst of one $batch at least, a small share of the budget at most;
        # interactive reads may go `headroom_units` beyond it (three $batch
        # requests, or 1% of the budget). The steady rate is what the budget
        # leaves after both.
        self.burst_units = max(20, int(budget) // 50)
        self.headroom_units = max(60, int(budget) // 100)
        steady = max(1.0, budget - self.burst_units - self.headroom_units)
        self._interval_us = WINDOW_SECONDS * 1e6 / steady
        self._burst_us = self.burst_units * self._interval_us
        self._interactive_burst_us = (self.burst_units + self.headroom_units) * self._interval_us

    @property
    def steady_rate_per_second(self) -> float:
        return 1e6 / self._interval_us

    async def back_off(self, seconds: float) -> None:
        """Graph throttled us: every replica's next reservation waits this long.

        Written to the shared schedule at once, so that replicas that have not
        been answered 429 themselves hold back too."""
        now = self._clock()
        if now - self._last_cut >= WINDOW_SECONDS:
            # One burst of throttling reports many 429s: one step for it.
            self.scale = max(MIN_SCALE, self.scale * THROTTLE_STEP)
            self._last_cut = self._scale_changed = now
            self._schedule()
        if seconds > 0:
            # Held against the larger (interactive) allowance: no read goes early.
            await self._reserve(
                0, self._interactive_burst_us, only_now=False, pause_us=seconds * 1e6
            )

    def _recover(self) -> None:
        now = self._clock()
        if self.scale < 1.0 and now - self._scale_changed >= WINDOW_SECONDS:
            self.scale = min(1.0, self.scale + RECOVERY_STEP)
            self._scale_changed = now
            self._schedule()

    async def spend(self, units: int, *, bulk: bool = False, max_wait: float | None = None) -> None:
        """Waits until `units` resource units may be sent without exceeding the budget.

        `bulk` (a sync's reads) gives way to interactive reads: see the module doc.
        An interactive caller that would wait longer than `max_wait` (Graph asked
        the app to pause) is told so at once: RateLimited, with the seconds left.
        """
        waited = 0.0
        if bulk:
            while (wait := await self.try_reserve(units)) > 0:
                waited += wait
                await asyncio.sleep(wait)
        else:
            waited = await self.reserve(units)
            if max_wait is not None and waited > max_wait:
                seconds = math.ceil(waited)
                raise RateLimited(
                    f"Microsoft Graph asked this app to wait (throttling); retry in {seconds} s",
                    retry_after_seconds=seconds,
                )
            if waited > 0:
                await asyncio.sleep(waited)
        UNITS_SPENT.inc(max(0, units))
        if waited > 0:
            WAITED.inc(waited)

    async def reserve(self, units: int) -> float:
        """Reserves `units` at interactive priority; the seconds to wait before using them."""
        return await self._reserve(units, self._interactive_burst_us, only_now=False)

    async def try_reserve(self, units: int) -> float:
        """Reserves `units` at bulk priority if they may go at once (returns 0);
        otherwise reserves nothing and returns the seconds to wait before trying again."""
        return -await self._reserve(units, self._burst_us, only_now=True)

    async def _reserve(
        self, units: int, burst_us: float, *, only_now: bool, pause_us: float = 0.0
    ) -> float:
        if units < 0 or (units == 0 and pause_us <= 0):
            return 0.0
        self._recover()
        if time.monotonic() >= self._redis_down_until:
            args: list[int | str] = [
                units,
                f"{self._interval_us:.3f}",
                f"{burst_us:.3f}",
                f"{pause_us:.0f}",
                "1" if only_now else "0",
            ]
            try:
                wait_us = float(await self._script(keys=[self._key], args=args))
            except aioredis.RedisError as error:
                log.warning("Redis unreachable (%s): pacing this replica alone for a while", error)
                # Asking a dead Redis before every request would stall every request.
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            else:
                return wait_us / 1e6
        wait_us = self._local.reserve(units, self._interval_us, burst_us, pause_us, only_now)
        return wait_us / 1e6
