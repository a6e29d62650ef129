"""Subscribers, statuses and dead letters as API messages.

message = subscriber_message(record, await status_of(change_log, store, record))
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from profilesync.v1 import notifier_pb2
from services.lob_notifier.status import SubscriberStatus
from services.lob_notifier.subscribers import DeadLetterRecord, SubscriberRecord

__all__ = ["dead_letter_message", "start_at_name", "subscriber_message", "timestamp"]

_SOURCES = {"api": notifier_pb2.SOURCE_API, "file": notifier_pb2.SOURCE_FILE}


def timestamp(ms: int) -> Timestamp | None:
    """A Timestamp for Unix milliseconds; None for 0 (never happened)."""
    if ms <= 0:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def start_at_name(value: int) -> str:
    return "oldest" if value == notifier_pb2.START_OLDEST else "latest"


def subscriber_message(
    record: SubscriberRecord, status: SubscriberStatus
) -> notifier_pb2.Subscriber:
    delivery = notifier_pb2.DeliveryStatus(
        state=status.state,  # the enum value's name
        lag_events=status.lag_events,
        lag_seconds=status.lag_seconds,
        last_error=record.last_error,
        consecutive_failures=record.failures,
        delivered_events=record.delivered,
        dead_letters=status.dead_letters,
        replays_pending=status.replays_pending,
    )
    for field, ms in (
        ("last_success_time", record.last_success_ms),
        ("last_attempt_time", record.last_attempt_ms),
        ("last_error_time", record.last_error_ms),
        ("next_attempt_time", record.next_attempt_ms if record.failures else 0),
    ):
        stamp = timestamp(ms)
        if stamp is not None:
            getattr(delivery, field).CopyFrom(stamp)
    message = notifier_pb2.Subscriber(
        name=record.name,
        url=record.url,
        has_secret=bool(record.secret),
        source=_SOURCES.get(record.source, notifier_pb2.SUBSCRIBER_SOURCE_UNSPECIFIED),
        cursor=record.cursor,
        status=delivery,
    )
    created = timestamp(record.created_ms)
    if created is not None:
        message.create_time.CopyFrom(created)
    return message


def dead_letter_message(
    record: DeadLetterRecord, events: Sequence[notifier_pb2.ChangeEvent]
) -> notifier_pb2.DeadLetter:
    complete = len(events) == record.count
    message = notifier_pb2.DeadLetter(
        id=record.id,
        delivery_id=record.delivery_id,
        events=list(events) if complete else [],
        attempts=record.attempts,
        last_error=record.error,
        first_cursor=record.first,
        last_cursor=record.last,
        event_count=record.count,
        expired=not complete,
    )
    parked = timestamp(record.park_ms)
    if parked is not None:
        message.park_time.CopyFrom(parked)
    return message
