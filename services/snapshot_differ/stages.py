"""Time spent per stage of a run, as GetSync reports it.

clock = StageClock()
with clock.stage("compare"):
    ...
clock.add("fetch", 0.25)
clock.timings()   # [StageTiming(stage="compare", seconds=...), ...]
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from profilesync.v1 import differ_pb2

__all__ = ["StageClock"]


class StageClock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def timings(self) -> list[differ_pb2.StageTiming]:
        return [
            differ_pb2.StageTiming(stage=stage, seconds=round(seconds, 4))
            for stage, seconds in self.seconds.items()
        ]
