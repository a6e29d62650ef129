"""Counters behind ``GET /_emulator/stats``; benchmarks and tests read them to check how a
client behaved (did it stay inside its budget, did it honour Retry-After).

    stats = Stats()
    stats.note_window(units_in_window=120, writes_in_window=0)
    stats.to_json()["peakResourceUnitsPer10s"]   # 120
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    requests: int = 0
    batch_items: int = 0
    resource_units: int = 0
    writes: int = 0
    throttled: int = 0
    #: Resource units charged for requests answered 429 (Graph charges them too).
    throttled_resource_units: int = 0
    injected_failures: int = 0
    dropped_connections: int = 0
    tokens_issued: int = 0
    #: Most resource units (and writes) any app spent within one quota window.
    peak_resource_units: int = 0
    peak_writes: int = 0
    #: Most operations (requests or batch items) whose answers waited out a latency at once.
    peak_operations_waiting: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def note_window(self, units_in_window: int, writes_in_window: int) -> None:
        if units_in_window > self.peak_resource_units:
            self.peak_resource_units = units_in_window
        if writes_in_window > self.peak_writes:
            self.peak_writes = writes_in_window

    def note_waiting(self, operations: int) -> None:
        if operations > self.peak_operations_waiting:
            self.peak_operations_waiting = operations

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "batchItems": self.batch_items,
            "resourceUnits": self.resource_units,
            "writes": self.writes,
            "throttled": self.throttled,
            "throttledResourceUnits": self.throttled_resource_units,
            "injectedFailures": self.injected_failures,
            "droppedConnections": self.dropped_connections,
            "tokensIssued": self.tokens_issued,
            "peakResourceUnitsPer10s": self.peak_resource_units,
            "peakWritesPer150s": self.peak_writes,
            "peakOperationsWaiting": self.peak_operations_waiting,
            "byRoute": dict(sorted(self.by_route.items())),
            "byStatus": {str(k): v for k, v in sorted(self.by_status.items())},
        }
