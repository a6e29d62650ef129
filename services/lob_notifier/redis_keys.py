"""Where the notifier keeps things in Redis, for the stream key S.

    keys = KeyLayout("profilesync:changes")
    keys.stream                  # "profilesync:changes"
    keys.subscriber("crm")       # "{profilesync:changes}:sub:crm"

    S                         the change log (a stream); see change_log
    {S}:dedupe:<event id>     entry id an event got; its presence makes a republish a duplicate
    {S}:seq                   number of events ever appended (each entry carries its number)
    {S}:subscribers           set of subscriber names
    {S}:sub:<name>            hash: a subscriber's settings, position and delivery status
    {S}:sub:<name>:lease      which notifier replica delivers the subscriber's webhooks
    {S}:sub:<name>:dead       stream of parked webhook batches (dead letters)
    {S}:sub:<name>:replay     list of dead letters queued for delivery again

The braces make every key hash to the stream's slot, so scripts that touch
several of them also run on a Redis Cluster (ElastiCache cluster mode). A
stream key that already carries a hash tag keeps its own.
"""

from __future__ import annotations

__all__ = ["KeyLayout"]


def _has_hash_tag(key: str) -> bool:
    start = key.find("{")
    return start != -1 and key.find("}", start + 1) > start + 1


class KeyLayout:
    """Every Redis key of one change log and its subscribers (layout in the module doc)."""

    def __init__(self, stream_key: str) -> None:
        self.stream = stream_key
        self.base = stream_key if _has_hash_tag(stream_key) else f"{{{stream_key}}}"
        self.seq = f"{self.base}:seq"
        self.subscribers = f"{self.base}:subscribers"

    def dedupe(self, event_id: str) -> str:
        return f"{self.base}:dedupe:{event_id}"

    def subscriber(self, name: str) -> str:
        return f"{self.base}:sub:{name}"

    def lease(self, name: str) -> str:
        return f"{self.base}:sub:{name}:lease"

    def dead(self, name: str) -> str:
        return f"{self.base}:sub:{name}:dead"

    def replay(self, name: str) -> str:
        return f"{self.base}:sub:{name}:replay"
