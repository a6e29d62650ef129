"""Identity-and-access throttling: resource units per 10 s and writes per 150 s, per app per
tenant, as Microsoft Graph documents it.

    throttle = Throttle()
    verdict = throttle.admit("app:tenant", units=1, writes=0, unit_limit=5000, write_limit=3000)
    if not verdict.allowed:
        ...  # answer 429 with Retry-After: format_retry_after(verdict.retry_after)

Graph describes a token bucket; we keep a sliding window instead, so that "the units admitted
in any 10 s window never exceed the quota" holds exactly. That is the budget clients plan
against and what tests assert (a bucket would let a client spend a full bucket and then the
refill inside the same 10 s). Refused requests are charged too: Graph "continues to log
resource usage while a client is being throttled" and "all requests accrue against your usage
limits" (https://learn.microsoft.com/en-us/graph/throttling), so a client that retries before
its Retry-After keeps the window full and stays throttled. The units admitted are counted
apart, for the statistics.

Windows are kept in 100 ms slots, so admitting a request is O(1) and computing a Retry-After
walks at most window/slot slots, whatever the request rate.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

SLOT_SECONDS: Final = 0.1
UNIT_WINDOW_SECONDS: Final = 10.0
WRITE_WINDOW_SECONDS: Final = 150.0
#: Retry-After is rounded up to this much beyond the exact time a request would fit, so a
#: client that waits as told is admitted even with a little clock noise.
_RETRY_MARGIN: Final = 0.001


@dataclass
class SlidingWindow:
    """Units counted over the last ``seconds`` (plus at most one slot)."""

    seconds: float
    slot: float = SLOT_SECONDS
    # [slot index, units] pairs, oldest first; a slot expires once its end is a window old.
    _slots: deque[list[int]] = field(default_factory=deque)
    used: int = 0

    def _expiry(self, index: int) -> float:
        return (index + 1) * self.slot + self.seconds

    def drain(self, now: float) -> None:
        while self._slots and self._expiry(self._slots[0][0]) <= now:
            self.used -= self._slots.popleft()[1]

    def wait_for(self, now: float, units: int, limit: int) -> float:
        """Seconds until ``units`` more fit under ``limit`` (0 when they fit now)."""
        self.drain(now)
        if self.used + units <= limit:
            return 0.0
        if units > limit:
            # Never fits; a whole window is the honest answer.
            return self.seconds + self.slot
        excess = self.used + units - limit
        freed = 0
        for index, amount in self._slots:
            freed += amount
            if freed >= excess:
                return max(self._expiry(index) - now, 0.0) + _RETRY_MARGIN
        return self.seconds + self.slot  # unreachable: used >= excess

    def record(self, now: float, units: int) -> None:
        index = math.floor(now / self.slot)
        if self._slots and self._slots[-1][0] == index:
            self._slots[-1][1] += units
        else:
            self._slots.append([index, units])
        self.used += units


@dataclass(frozen=True)
class Verdict:
    """The outcome of one admission."""

    allowed: bool
    #: Seconds to wait before retrying; 0 when allowed.
    retry_after: float = 0.0
    #: Which quota refused: "ReadWrite" (resource units) or "Write" (writes).
    refused_by: Literal["ReadWrite", "Write"] | None = None
    #: Resource units and writes admitted in the windows after this admission.
    units_in_window: int = 0
    writes_in_window: int = 0
    #: Units charged in the window / ``unit_limit`` (how close the app is to throttling).
    usage: float = 0.0


@dataclass
class Backlog:
    """Units refused so far within one client request (a batch).

    Each refused batch item is told to wait until it *and every item refused before it*
    fit (with the charges of the refused items still in the window), so a client that
    retries the refused items together after the longest Retry-After is admitted (unless
    other traffic took the room meanwhile).
    """

    units: int = 0
    writes: int = 0


class Throttle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Everything charged (admitted and refused): what admission is decided on.
        self._units: dict[str, SlidingWindow] = {}
        self._writes: dict[str, SlidingWindow] = {}
        # What was admitted only: the budget a client actually used, for the statistics.
        self._admitted_units: dict[str, SlidingWindow] = {}
        self._admitted_writes: dict[str, SlidingWindow] = {}

    @staticmethod
    def _window(windows: dict[str, SlidingWindow], key: str, seconds: float) -> SlidingWindow:
        window = windows.get(key)
        if window is None:
            window = windows[key] = SlidingWindow(seconds)
        return window

    def admit(
        self,
        key: str,
        units: int,
        writes: int,
        unit_limit: int,
        write_limit: int,
        backlog: Backlog | None = None,
    ) -> Verdict:
        """Charge ``key``; allow, or refuse with a Retry-After. Both are charged."""
        now = self._clock()
        unit_window = self._window(self._units, key, UNIT_WINDOW_SECONDS)
        write_window = self._window(self._writes, key, WRITE_WINDOW_SECONDS)
        admitted_units = self._window(self._admitted_units, key, UNIT_WINDOW_SECONDS)
        admitted_writes = self._window(self._admitted_writes, key, WRITE_WINDOW_SECONDS)
        queued = backlog or Backlog()
        unit_refused = unit_window.wait_for(now, units + queued.units, unit_limit) > 0
        write_refused = bool(writes) and (
            write_window.wait_for(now, writes + queued.writes, write_limit) > 0
        )
        unit_window.record(now, units)
        if writes:
            write_window.record(now, writes)
        if unit_refused or write_refused:
            # The request's own charge is in the window now: the wait is until a retry
            # fits beside it (and beside the items of this batch refused before it).
            unit_wait = (
                unit_window.wait_for(now, units + queued.units, unit_limit) if unit_refused else 0
            )
            write_wait = (
                write_window.wait_for(now, writes + queued.writes, write_limit)
                if write_refused
                else 0
            )
            if backlog is not None:
                # Only the quota that refused holds room for this item from now on.
                backlog.units += units if unit_refused else 0
                backlog.writes += writes if write_refused else 0
            admitted_units.drain(now)
            admitted_writes.drain(now)
            return Verdict(
                allowed=False,
                retry_after=max(unit_wait, write_wait),
                refused_by="Write" if write_wait > unit_wait else "ReadWrite",
                units_in_window=admitted_units.used,
                writes_in_window=admitted_writes.used,
                usage=unit_window.used / unit_limit if unit_limit else 1.0,
            )
        admitted_units.drain(now)
        admitted_units.record(now, units)
        if writes:
            admitted_writes.drain(now)
            admitted_writes.record(now, writes)
        return Verdict(
            allowed=True,
            units_in_window=admitted_units.used,
            writes_in_window=admitted_writes.used,
            usage=unit_window.used / unit_limit if unit_limit else 1.0,
        )

    def reset(self) -> None:
        for windows in (self._units, self._writes, self._admitted_units, self._admitted_writes):
            windows.clear()


def format_retry_after(seconds: float) -> str:
    """Retry-After as Graph may send it: seconds, fractional (tenths) under a minute.

    Always rounded up, so waiting the announced time is never too short.
    """
    if seconds >= 60:
        return str(math.ceil(seconds))
    tenths = max(math.ceil(seconds * 10), 1)
    return f"{tenths / 10:g}"
