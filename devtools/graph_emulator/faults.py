"""Faults on demand: transient failures and dropped connections, reproducible from a seed.

    faults = Faults(seed=7)
    failure = faults.failure(config)        # None, or an InjectedFailure to answer with
    if faults.drop(config): ...             # cut the connection instead of answering

Every decision is drawn from RNGs seeded by the configured seed, one per kind of fault, so
the same seed and the same sequence of requests give the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from devtools.graph_emulator.errors import GraphError
from devtools.graph_emulator.settings import EmulatorConfig
from devtools.graph_emulator.throttle import format_retry_after

# (code, message) Graph answers with for each injected status.
_ANSWERS: Final[dict[int, tuple[str, str]]] = {
    429: (
        "TooManyRequests",
        "The service is under heavy load; too many requests. Retry after the time given in "
        "Retry-After.",
    ),
    500: ("generalException", "An internal server error occurred. Retry the request."),
    502: ("BadGateway", "The gateway received an invalid response from the service."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please try later."),
    504: ("GatewayTimeout", "The service did not answer in time."),
}
RETRY_AFTER_RANGE: Final = (0.5, 3.0)


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    retry_after: float

    def error(self) -> GraphError:
        code, message = _ANSWERS[self.status]
        headers = {"Retry-After": format_retry_after(self.retry_after)}
        if self.status == 429:
            # A 429 below the quota: Graph names load, not the budget, as the reason.
            headers["x-ms-throttle-information"] = "CPULimitExceeded"
        return GraphError(self.status, code, message, headers=headers)


class Faults:
    def __init__(self, seed: int) -> None:
        self._failures = random.Random()
        self._drops = random.Random()
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._failures.seed(f"failures:{seed}")
        self._drops.seed(f"drops:{seed}")

    def failure(self, config: EmulatorConfig) -> InjectedFailure | None:
        if config.failure_rate <= 0 or self._failures.random() >= config.failure_rate:
            return None
        status = self._failures.choice(config.failure_statuses)
        return InjectedFailure(status, self._failures.uniform(*RETRY_AFTER_RANGE))

    def drop(self, config: EmulatorConfig) -> bool:
        return config.drop_rate > 0 and self._drops.random() < config.drop_rate
