"""How many Graph requests to keep in flight: enough to spend the budget at
whatever latency Graph shows, halved when Graph throttles.

    limit = AdaptiveLimit(rate=lambda: budget.steady_rate_per_second / 20, maximum=256)
    async with limit.slot():
        started = time.monotonic()
        ...
        limit.observe(time.monotonic() - started)
        limit.succeeded()   or   limit.throttled()

By Little's law the requests in flight that keep a rate busy are the rate
times the time each one takes. The rate is the budget's (in requests per
second), the time an average (EWMA) of the latency observed, with headroom for
its spread and for requests waiting their turn in the budget. Graph's latency
moves from tens of milliseconds to seconds (profile properties come from
SharePoint), so no fixed number fits: 16 in flight at 1 s each is 16 requests a
second, a fifth of the largest tier's budget.

A 429 halves the limit (at most once per second, since one burst of
throttling reports many 429s at once); each window of successes as large as
the limit then raises it by one again, up to what the rate asks. `maximum`
is a safety bound only (see GraphClient for how it maps onto HTTP/2 streams).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["AdaptiveLimit"]

# Latency assumed before the first answer: Graph's profile reads take about
# this long (SharePoint-backed properties); the first answers correct it.
INITIAL_LATENCY_SECONDS = 1.0
# Weight of each new latency in the average: about the last ten answers count.
LATENCY_WEIGHT = 0.1
# In flight beyond rate x latency: latency varies from request to request (the
# slowest item of a $batch decides), and requests waiting for the budget hold a
# slot too.
HEADROOM = 1.5
SPARE_SLOTS = 2


class AdaptiveLimit:
    def __init__(self, *, rate: Callable[[], float], maximum: int) -> None:
        """`rate`: requests per second the budget allows now (it may change)."""
        self.maximum = maximum
        self._rate = rate
        self.latency = INITIAL_LATENCY_SECONDS
        # What throttling left of the limit; never above what the rate asks.
        self._cap = maximum
        self._in_flight = 0
        self._successes = 0
        self._last_decrease = 0.0
        self._changed = asyncio.Condition()

    @property
    def wanted(self) -> int:
        """In flight that keeps the rate busy at the latency observed (Little's law)."""
        wanted = math.ceil(self._rate() * self.latency * HEADROOM) + SPARE_SLOTS
        return max(1, min(wanted, self.maximum))

    @property
    def limit(self) -> int:
        return max(1, min(self.wanted, self._cap))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def observe(self, seconds: float) -> None:
        """The time Graph took to answer one request."""
        self.latency += LATENCY_WEIGHT * (max(0.0, seconds) - self.latency)

    def succeeded(self) -> None:
        limit = self.limit
        self._successes += 1
        if self._successes >= limit:
            # Waiters see the higher limit at the next release, which at this
            # rate of success comes within one request's time.
            self._successes = 0
            self._cap = min(self.maximum, max(self._cap, limit) + 1)

    def throttled(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease < 1.0:
            return
        self._last_decrease = now
        self._successes = 0
        self._cap = max(1, self.limit // 2)
