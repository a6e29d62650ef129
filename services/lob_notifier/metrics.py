"""Prometheus metrics of the notifier (served on METRICS_PORT with the shared ones).

Per-subscriber gauges are refreshed by every replica from Redis, so they
agree across replicas: aggregate with `max by (subscriber)`. Counters of
webhook requests come from the replica that made them: aggregate with `sum`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "DEAD_LETTERED",
    "EVENTS_PUBLISHED",
    "HEARTBEATS",
    "OPEN_STREAMS",
    "SUBSCRIBERS_DELIVERING",
    "SUBSCRIBER_GAUGES",
    "WAITING_CALLS",
    "WAITING_REFUSED",
    "WEBHOOK_EVENTS",
    "WEBHOOK_REQUESTS",
    "WEBHOOK_SECONDS",
]

EVENTS_PUBLISHED = Counter(
    "profilesync_notifier_events_published_total",
    "Change events offered to the notifier, by outcome",
    ["outcome"],
)
OPEN_STREAMS = Gauge("profilesync_notifier_open_streams", "StreamChanges calls open now")
WAITING_CALLS = Gauge(
    "profilesync_notifier_waiting_calls",
    "Change streams and long-polls open on this replica (they share one Redis reader)",
)
WAITING_REFUSED = Counter(
    "profilesync_notifier_waiting_calls_refused_total",
    "Change streams and long-polls refused with RESOURCE_EXHAUSTED, by the cap reached",
    ["cap"],
)
HEARTBEATS = Counter("profilesync_notifier_heartbeats_total", "Heartbeats sent on change streams")

WEBHOOK_REQUESTS = Counter(
    "profilesync_notifier_webhook_requests_total",
    "Webhook requests, by subscriber and outcome (delivered: 2xx; failed: anything else)",
    ["subscriber", "outcome"],
)
WEBHOOK_EVENTS = Counter(
    "profilesync_notifier_webhook_events_delivered_total",
    "Events delivered by webhook (answered 2xx)",
    ["subscriber"],
)
WEBHOOK_SECONDS = Histogram(
    "profilesync_notifier_webhook_request_seconds",
    "Time for a webhook receiver to answer",
    ["subscriber"],
)
DEAD_LETTERED = Counter(
    "profilesync_notifier_webhook_batches_dead_lettered_total",
    "Webhook batches parked after their last failed attempt",
    ["subscriber"],
)
SUBSCRIBERS_DELIVERING = Gauge(
    "profilesync_notifier_webhook_subscribers_delivering",
    "Webhook subscribers this replica delivers now (it holds their lease)",
)

LAG_EVENTS = Gauge(
    "profilesync_notifier_subscriber_lag_events",
    "Events in the log after the subscriber's position",
    ["subscriber"],
)
LAG_SECONDS = Gauge(
    "profilesync_notifier_subscriber_lag_seconds",
    "Age of the oldest event after the subscriber's position (0 when caught up)",
    ["subscriber"],
)
LAST_SUCCESS = Gauge(
    "profilesync_notifier_subscriber_last_success_timestamp_seconds",
    "When a webhook batch was last answered 2xx, or an Ack last moved the position",
    ["subscriber"],
)
CONSECUTIVE_FAILURES = Gauge(
    "profilesync_notifier_subscriber_consecutive_failures",
    "Failed attempts of the webhook batch being retried",
    ["subscriber"],
)
DEAD_LETTERS = Gauge(
    "profilesync_notifier_subscriber_dead_letters",
    "Webhook batches in the subscriber's dead-letter list",
    ["subscriber"],
)
EXPIRED = Gauge(
    "profilesync_notifier_subscriber_expired",
    "1 when events after the subscriber's position were removed by retention",
    ["subscriber"],
)

SUBSCRIBER_GAUGES = (
    LAG_EVENTS,
    LAG_SECONDS,
    LAST_SUCCESS,
    CONSECUTIVE_FAILURES,
    DEAD_LETTERS,
    EXPIRED,
)
