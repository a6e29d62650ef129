"""Caps on calls that wait for events (change streams and long-polls).

    admission = Admission(max_waiting=10_000, max_waiting_per_caller=1_000)
    with admission.admit(caller_key(), "StreamChanges"):
        ...  # the call waits, streams, returns

A call over a cap is refused at once with RESOURCE_EXHAUSTED (REST 429) and
`Retry-After`, before it reads anything: one caller opening streams in a
loop fills its own share, never the replica, and the replica refuses before
its memory or Redis suffers. The counts are per process; the chart sets the
per-replica cap and the gRPC server's concurrency limit above it
(GRPC_MAX_CONCURRENT_RPCS), so unary calls keep being served while streams
are at their cap.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator

from services.common.auth import current_principal
from services.common.errors import RateLimited, Unauthenticated
from services.lob_notifier import metrics

__all__ = ["RETRY_AFTER_SECONDS", "Admission", "caller_key"]

# A refused stream is worth trying again soon: streams end all the time.
RETRY_AFTER_SECONDS = 5


def caller_key() -> str:
    """Who the cap counts against: the verified app or user (its object id)."""
    try:
        principal = current_principal()
    except Unauthenticated:
        return "anonymous"  # servers without token checks (in-process tests only)
    return principal.subject or principal.name or "anonymous"


class Admission:
    def __init__(self, *, max_waiting: int, max_waiting_per_caller: int) -> None:
        self.max_waiting = max_waiting
        self.max_waiting_per_caller = max_waiting_per_caller
        self._total = 0
        self._by_caller: collections.Counter[str] = collections.Counter()

    @property
    def waiting(self) -> int:
        return self._total

    @contextlib.contextmanager
    def admit(self, caller: str, what: str) -> Iterator[None]:
        if self._by_caller[caller] >= self.max_waiting_per_caller:
            metrics.WAITING_REFUSED.labels("caller").inc()
            raise RateLimited(
                f"{what}: this caller already has {self.max_waiting_per_caller} open change "
                "streams and long-polls on this replica "
                "(NOTIFIER_MAX_WAITING_CALLS_PER_CALLER); close one, or retry later",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        if self._total >= self.max_waiting:
            metrics.WAITING_REFUSED.labels("replica").inc()
            raise RateLimited(
                f"{what}: this notifier replica serves its limit of {self.max_waiting} open "
                "change streams and long-polls (NOTIFIER_MAX_WAITING_CALLS); retry later",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        self._total += 1
        self._by_caller[caller] += 1
        metrics.WAITING_CALLS.inc()
        try:
            yield
        finally:
            self._total -= 1
            self._by_caller[caller] -= 1
            if self._by_caller[caller] <= 0:
                del self._by_caller[caller]
            metrics.WAITING_CALLS.dec()
