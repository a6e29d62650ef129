"""Sliding-window budgets per application, like Graph's identity-and-access throttling.

Each app has a resource-unit window (10 s) and a write window (150 s). A request that does
not fit is refused with the time until enough of the window has drained.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Window:
    seconds: float
    events: deque[tuple[float, int]] = field(default_factory=deque)
    used: int = 0

    def _drain(self, now: float) -> None:
        horizon = now - self.seconds
        while self.events and self.events[0][0] <= horizon:
            _, cost = self.events.popleft()
            self.used -= cost

    def wait_for(self, now: float, cost: int, limit: int) -> float:
        """Seconds until ``cost`` more units fit under ``limit`` (0 when they fit now)."""
        self._drain(now)
        if self.used + cost <= limit:
            return 0.0
        if cost > limit:
            return self.seconds
        excess = self.used + cost - limit
        freed = 0
        for stamp, units in self.events:
            freed += units
            if freed >= excess:
                return max(stamp + self.seconds - now, 0.001)
        return self.seconds

    def record(self, now: float, cost: int) -> None:
        self.events.append((now, cost))
        self.used += cost


class Throttle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._units: dict[str, _Window] = {}
        self._writes: dict[str, _Window] = {}

    def admit(
        self, app_id: str, units: int, writes: int, unit_limit: int, write_limit: int
    ) -> float | None:
        """Charge the app and return None, or return Retry-After seconds without charging."""
        now = self._clock()
        unit_window = self._units.setdefault(app_id, _Window(10.0))
        write_window = self._writes.setdefault(app_id, _Window(150.0))
        wait = unit_window.wait_for(now, units, unit_limit)
        if writes:
            wait = max(wait, write_window.wait_for(now, writes, write_limit))
        if wait > 0:
            return wait
        unit_window.record(now, units)
        if writes:
            write_window.record(now, writes)
        return None

    def reset(self) -> None:
        self._units.clear()
        self._writes.clear()


def format_retry_after(seconds: float) -> str:
    """Retry-After as Graph may send it: seconds, fractional when under a minute."""
    if seconds >= 60:
        return str(math.ceil(seconds))
    return f"{math.ceil(seconds * 10) / 10:g}"
