"""Counters behind ``GET /_emulator/stats``; benchmarks read them to check client behaviour."""

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
    injected_failures: int = 0
    tokens_issued: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "batchItems": self.batch_items,
            "resourceUnits": self.resource_units,
            "writes": self.writes,
            "throttled": self.throttled,
            "injectedFailures": self.injected_failures,
            "tokensIssued": self.tokens_issued,
            "byRoute": dict(sorted(self.by_route.items())),
            "byStatus": {str(k): v for k, v in sorted(self.by_status.items())},
        }
