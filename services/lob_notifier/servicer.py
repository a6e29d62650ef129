"""The LobNotifier gRPC API over the change log.

    servicer = LobNotifierServicer(ChangeLog(connect(url), "profilesync:changes"))
    server, port, _ = await create_server(settings, [binding(servicer)])

Request limits (page sizes, cursor syntax, batch sizes) are checked by the
shared interceptor from the proto; this module adds only what the proto
cannot say, such as a cursor whose numbers are too large for Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc
from services.common.errors import InvalidArgument
from services.common.server import ServiceBinding
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.cursors import OLDEST, is_valid_cursor

__all__ = ["SERVICE_NAME", "LobNotifierServicer", "binding"]

SERVICE_NAME: str = notifier_pb2.DESCRIPTOR.services_by_name["LobNotifier"].full_name

DEFAULT_PAGE_SIZE = 100
# Events fetched per read while streaming; the stream sends them one by one.
STREAM_BATCH = 100
# A streaming call waits for new events in blocks this long (ms). Cancellation
# interrupts a block at once; the bound only keeps each Redis call short.
STREAM_BLOCK_MS = 2_000

EVENTS_PUBLISHED = Counter(
    "profilesync_notifier_events_published_total",
    "Change events offered to the notifier, by outcome",
    ["outcome"],
)


def _checked_cursor(value: str) -> str:
    if value and not is_valid_cursor(value):
        raise InvalidArgument("afterCursor: must be a cursor returned by this API")
    return value


class LobNotifierServicer(notifier_pb2_grpc.LobNotifierServicer):
    """Publish, ListChanges and StreamChanges on one ChangeLog."""

    def __init__(self, change_log: ChangeLog) -> None:
        self._log = change_log

    async def Publish(
        self,
        request: notifier_pb2.PublishRequest,
        context: grpc.aio.ServicerContext[
            notifier_pb2.PublishRequest, notifier_pb2.PublishResponse
        ],
    ) -> notifier_pb2.PublishResponse:
        now = Timestamp()
        now.GetCurrentTime()
        for event in request.events:
            if not event.HasField("detect_time"):
                event.detect_time.CopyFrom(now)
        result = await self._log.publish(request.events)
        EVENTS_PUBLISHED.labels("accepted").inc(result.accepted)
        EVENTS_PUBLISHED.labels("duplicate").inc(result.duplicates)
        return notifier_pb2.PublishResponse(
            accepted=result.accepted,
            duplicates=result.duplicates,
            last_cursor=result.last_cursor,
        )

    async def ListChanges(
        self,
        request: notifier_pb2.ListChangesRequest,
        context: grpc.aio.ServicerContext[
            notifier_pb2.ListChangesRequest, notifier_pb2.ListChangesResponse
        ],
    ) -> notifier_pb2.ListChangesResponse:
        cursor = _checked_cursor(request.after_cursor)
        # XREAD BLOCK answers at once when events are there, so this waits
        # only when there is nothing yet.
        events = await self._log.read(
            cursor or None,
            count=request.page_size or DEFAULT_PAGE_SIZE,
            block_ms=request.wait_seconds * 1000,
        )
        return notifier_pb2.ListChangesResponse(
            events=events, next_cursor=events[-1].cursor if events else request.after_cursor
        )

    async def StreamChanges(
        self,
        request: notifier_pb2.StreamChangesRequest,
        context: grpc.aio.ServicerContext[
            notifier_pb2.StreamChangesRequest, notifier_pb2.ChangeEvent
        ],
    ) -> AsyncIterator[notifier_pb2.ChangeEvent]:
        cursor = _checked_cursor(request.after_cursor)
        if not cursor:
            # "From now" is pinned to a concrete position before the first
            # wait, so an event published between two waits is never missed.
            cursor = await self._log.last_cursor() or OLDEST
        # Runs until the client cancels: grpc cancels this task, which ends
        # the pending read at once.
        while True:
            events = await self._log.read(cursor, count=STREAM_BATCH, block_ms=STREAM_BLOCK_MS)
            for event in events:
                yield event
            if events:
                cursor = events[-1].cursor


def binding(servicer: LobNotifierServicer) -> ServiceBinding:
    """The servicer as a ServiceBinding for create_server/run_service."""

    def register(server: grpc.aio.Server) -> None:
        notifier_pb2_grpc.add_LobNotifierServicer_to_server(servicer, server)

    return ServiceBinding(SERVICE_NAME, register)
