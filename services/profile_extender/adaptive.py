"""Adaptive concurrency for Graph requests: additive increase, multiplicative
decrease (the way TCP finds its window).

    limit = AdaptiveLimit(initial=4, maximum=16)
    async with limit.slot():
        ...
        limit.succeeded()   or   limit.throttled()

Each window of successes as large as the limit raises it by one; a 429
halves it (at most once per second, since one burst of throttling reports
many 429s at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["AdaptiveLimit"]


class AdaptiveLimit:
    def __init__(self, *, initial: int, maximum: int) -> None:
        self.maximum = maximum
        self.limit = max(1, min(initial, maximum))
        self._in_flight = 0
        self._successes = 0
        self._last_decrease = 0.0
        self._changed = asyncio.Condition()

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

    def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            # Waiters see the higher limit at the next release, which at this
            # rate of success comes within one request's time.
            self._successes = 0
            self.limit += 1

    def throttled(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease < 1.0:
            return
        self._last_decrease = now
        self._successes = 0
        self.limit = max(1, self.limit // 2)
