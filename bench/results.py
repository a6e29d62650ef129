"""The shape of one benchmark result row (what bench/results.json holds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Result"]


@dataclass(frozen=True)
class Result:
    """Result("search p99", "100,000 profiles, 200 queries", 7.9, "ms",
               baseline=None, goal="< 20 ms", met=True)

    `ratio` is value / baseline when a baseline was measured side by side.
    `required` marks a correctness figure (nothing lost): `python -m bench`
    fails when it is not met, also with --quick, which judges no timing.
    """

    name: str
    workload: str
    value: float
    unit: str
    baseline: float | None = None
    goal: str | None = None
    met: bool | None = None
    required: bool = False

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return round(self.value / self.baseline, 3)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}
