"""Where a run's change events go: the notifier, or (in a dry run) a log.

publisher = EventPublisher(stub, batch_size=500)
await publisher.add(events)    # publishes whenever a batch fills
await publisher.flush()        # the rest; after this the notifier holds every event
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

import grpc

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc
from services.snapshot_differ.crashpoints import crash_point

__all__ = ["DryRunSink", "EventPublisher", "EventSink"]

log = logging.getLogger(__name__)

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class EventSink(Protocol):
    accepted: int
    duplicates: int
    seconds: float
    # The change log's cursor after the last call ("" before any).
    last_cursor: str

    async def add(self, events: Iterable[notifier_pb2.ChangeEvent]) -> None: ...

    async def flush(self) -> None: ...


class EventPublisher:
    """Sends change events to the notifier in batches, retrying while it restarts."""

    def __init__(
        self, stub: notifier_pb2_grpc.LobNotifierStub, batch_size: int, attempts: int = 8
    ) -> None:
        self._stub = stub
        self._batch_size = batch_size
        self._attempts = attempts
        self._pending: list[notifier_pb2.ChangeEvent] = []
        self.accepted = 0
        self.duplicates = 0
        self.seconds = 0.0
        self.last_cursor = ""

    async def add(self, events: Iterable[notifier_pb2.ChangeEvent]) -> None:
        self._pending.extend(events)
        while len(self._pending) >= self._batch_size:
            batch, self._pending = (
                self._pending[: self._batch_size],
                self._pending[self._batch_size :],
            )
            await self._publish(batch)

    async def flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            await self._publish(batch)

    async def _publish(self, events: list[notifier_pb2.ChangeEvent]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        request = notifier_pb2.PublishRequest(events=events)
        for attempt in range(self._attempts):
            try:
                response = await self._stub.Publish(request, timeout=60)
                break
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRYABLE or attempt == self._attempts - 1:
                    raise
                log.warning("notifier unavailable, retrying: %s", error.details())
                await asyncio.sleep(min(0.2 * 2**attempt, 10.0))
        self.accepted += response.accepted
        self.duplicates += response.duplicates
        self.last_cursor = response.last_cursor or self.last_cursor
        self.seconds += loop.time() - started
        crash_point("published")


class DryRunSink:
    """Counts the events a dry run would publish and logs the first `log_limit`."""

    def __init__(self, log_limit: int = 1000) -> None:
        self._log_limit = log_limit
        self.accepted = 0
        self.duplicates = 0
        self.seconds = 0.0
        self.last_cursor = ""

    async def add(self, events: Iterable[notifier_pb2.ChangeEvent]) -> None:
        for event in events:
            if self.accepted < self._log_limit:
                log.info(
                    "dry run: would publish %s of %s",
                    notifier_pb2.ChangeKind.Name(event.kind),
                    event.user_id,
                    extra={
                        "eventId": event.event_id,
                        "changedFields": list(event.changed_fields),
                        "origin": notifier_pb2.ChangeOrigin.Name(event.origin),
                    },
                )
            elif self.accepted == self._log_limit:
                log.info("dry run: more changes follow; only the counts are reported")
            self.accepted += 1

    async def flush(self) -> None:
        return None
