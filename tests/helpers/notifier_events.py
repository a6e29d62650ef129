"""Change events and small helpers for the notifier tests (a uniquely named
module, not conftest, so importing it cannot pick up another directory's conftest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import struct_pb2

from profilesync.v1 import notifier_pb2, profile_pb2


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


def rich_event(n: int) -> notifier_pb2.ChangeEvent:
    """An event using every kind of field a stream line carries: profiles,
    timestamps with nanoseconds, Values (null, string, list), escapes, non-ASCII."""
    before = profile_pb2.Profile(
        id=f"user-{n}",
        display_name='Zoë "Z" <b>Ünal</b>\u2028\x85\u2029\t\\',
        skills=["retail", "日本語"],
    )
    after = profile_pb2.Profile(id=f"user-{n}", display_name="Zoë Ünal", skills=["retail"])
    after.fetch_time.FromNanoseconds(1_700_000_000_123_456_789)
    event = notifier_pb2.ChangeEvent(
        event_id=f"rich-{n:05d}",
        run_id="run-1",
        user_id=f"user-{n}",
        kind=notifier_pb2.DELETED if n % 2 else notifier_pb2.UPDATED,
        changed_fields=["displayName", "skills"],
        before=before,
        after=after,
        origin=notifier_pb2.LOB,
        field_changes=[
            notifier_pb2.FieldChange(
                field="displayName",
                before=struct_pb2.Value(string_value=before.display_name),
                after=struct_pb2.Value(null_value=struct_pb2.NULL_VALUE),
            ),
            notifier_pb2.FieldChange(field="skills", removed=["日本語"]),
        ],
        reason="🙂 edited\x01",
    )
    event.detect_time.FromMilliseconds(1_700_000_000_120)
    return event


def event_ids(start: int, stop: int) -> list[str]:
    return [f"event-{n:05d}" for n in range(start, stop)]


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 60.0, what: str = "condition"
) -> Any:
    """Polls `check` until it returns something truthy; fails after `timeout` seconds.

    The timeouts are generous on purpose: the machine is shared and slow at times,
    and the checks only wait for the outcome, never for a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
