"""A subscriber's delivery status, as the API and the metrics show it.

status = await status_of(change_log, store, record)
status.state, status.lag_events, status.lag_seconds
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from services.lob_notifier import metrics
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.subscribers import SubscriberRecord, SubscriberStore

__all__ = ["SubscriberStatus", "export_gauges", "remove_gauges", "status_of"]

CAUGHT_UP = "CAUGHT_UP"
BEHIND = "BEHIND"
RETRYING = "RETRYING"
EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class SubscriberStatus:
    state: str
    lag_events: int
    lag_seconds: float
    dead_letters: int
    replays_pending: int


async def status_of(
    change_log: ChangeLog, store: SubscriberStore, record: SubscriberRecord
) -> SubscriberStatus:
    backlog = await change_log.backlog(record.cursor)
    lag_seconds = 0.0
    if backlog.oldest_ms is not None:
        lag_seconds = max(0.0, time.time() - backlog.oldest_ms / 1000)
    dead = await store.dead_letter_count(record.name)
    replays = await store.replay_count(record.name)
    if await change_log.has_gap(record.cursor):
        state = EXPIRED
    elif record.failures > 0:
        state = RETRYING
    elif backlog.events or replays:
        state = BEHIND
    else:
        state = CAUGHT_UP
    return SubscriberStatus(state, backlog.events, round(lag_seconds, 3), dead, replays)


def export_gauges(record: SubscriberRecord, status: SubscriberStatus) -> None:
    name = record.name
    metrics.LAG_EVENTS.labels(name).set(status.lag_events)
    metrics.LAG_SECONDS.labels(name).set(status.lag_seconds)
    metrics.LAST_SUCCESS.labels(name).set(record.last_success_ms / 1000)
    metrics.CONSECUTIVE_FAILURES.labels(name).set(record.failures)
    metrics.DEAD_LETTERS.labels(name).set(status.dead_letters)
    metrics.EXPIRED.labels(name).set(1 if status.state == EXPIRED else 0)


def remove_gauges(name: str) -> None:
    for gauge in metrics.SUBSCRIBER_GAUGES:
        with contextlib.suppress(KeyError):  # never exported by this replica
            gauge.remove(name)
