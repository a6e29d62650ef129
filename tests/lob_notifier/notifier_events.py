"""Change events for the notifier tests (a uniquely named module, not conftest,
so importing it cannot pick up another directory's conftest)."""

from __future__ import annotations

from profilesync.v1 import notifier_pb2


def make_event(n: int, *, run_id: str = "run-1") -> notifier_pb2.ChangeEvent:
    """Event number `n`: ids sort in publishing order."""
    return notifier_pb2.ChangeEvent(
        event_id=f"event-{n:05d}",
        run_id=run_id,
        user_id=f"user-{n}",
        kind=notifier_pb2.UPDATED,
        changed_fields=["skills"],
        origin=notifier_pb2.SHAREPOINT,
    )
