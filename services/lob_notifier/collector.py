"""Garbage collection for a notifier holding thousands of open streams.

    tune_collector()   # once, before serving

Each open stream keeps objects alive (its call, generators, futures) and every
event wakes all of them, each allocating a little. With CPython's default
thresholds (700, 10, 10) that meant a young-generation pass every few hundred
allocations and, while streams open, full passes over every live object: with
2,000 open streams, pauses of 30 to 50 ms (generation 1) and 200 to 450 ms
(generation 2), each one holding back every stream's next event.

Here what start-up made is frozen (it lives as long as the process: never
scanned again), and the passes are rarer: the young generation every 50,000
allocations, the middle one every 20 of those, a full pass after 100 of the
middle ones (and, as CPython does anyway, only once the survivors have grown
by a quarter). Cycles are still collected, a little later.
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune_collector"]

THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
