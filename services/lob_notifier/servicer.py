"""The LobNotifier gRPC API over the change log and its subscribers.

    servicer = LobNotifierServicer(change_log, store, admin)
    server, port, _ = await create_server(settings, [binding(servicer)])
    ...
    await servicer.close()   # on SIGTERM: open streams end, long-polls answer now

Request limits (page sizes, cursor syntax, batch sizes) are checked by the
shared interceptor from the proto; this module adds only what the proto
cannot say, such as a cursor whose numbers are too large for Redis. The
subscriber RPCs are in subscriber_api.py.

Heartbeats. StreamChanges sends a ChangeEvent with `heartbeat: true` and
only `cursor` set whenever it has had nothing to send: at once if the
stream starts with nothing to send (so the caller learns the position "from
now" means, and an HTTP client gets its response headers), then after each
`heartbeat_seconds` without an event. The cursor is the position the
stream has reached, so resuming after it never misses an event. Keeping the
message type, rather than wrapping events in a new one, leaves the REST
stream (`/v1/changes:stream`, one JSON object per line) as it was for
consumers that read `eventId`: a heartbeat line has an empty `eventId`.

The REST stream. `/v1/changes:stream` is served by StreamChangeLines, the
same stream as JSON lines in google.api.HttpBody messages, which the gateway
passes through as they are. Each event is encoded once for every stream that
carries it (json_lines.py), and what one read returns goes out as one frame,
rather than one gRPC message and one transcoding per event and stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import grpc
from google.api.httpbody_pb2 import HttpBody  # type: ignore[import-untyped]  # ships no stubs
from google.protobuf.timestamp_pb2 import Timestamp

from profilesync.v1 import notifier_pb2, notifier_pb2_grpc
from services.common.errors import CursorExpired, InvalidArgument
from services.common.server import ServiceBinding
from services.lob_notifier import metrics
from services.lob_notifier.admin import SubscriberAdmin
from services.lob_notifier.admission import Admission, caller_key
from services.lob_notifier.change_log import ChangeLog, LogGap
from services.lob_notifier.cursors import OLDEST, is_valid_cursor, normalized
from services.lob_notifier.destinations import DestinationPolicy
from services.lob_notifier.json_lines import CONTENT_TYPE, EventLines
from services.lob_notifier.subscriber_api import SubscriberApi
from services.lob_notifier.subscribers import SubscriberStore
from services.lob_notifier.tail import Stop

__all__ = ["SERVICE_NAME", "LobNotifierServicer", "binding"]

SERVICE_NAME: str = notifier_pb2.DESCRIPTOR.services_by_name["LobNotifier"].full_name

DEFAULT_PAGE_SIZE = 100
DEFAULT_HEARTBEAT_SECONDS = 15
# Events fetched per read while streaming; the stream sends them one by one.
STREAM_BATCH = 100
# A streaming call waits for new events in blocks at most this long (ms).
# Cancellation and close() interrupt a block at once; the bound only keeps
# each Redis call short.
STREAM_BLOCK_MS = 2_000
# Open streams and long-polls when no Admission is given (in-process tests);
# the service passes the configured caps.
DEFAULT_MAX_WAITING = 10_000
# How long close() waits for the reads it ended to wind down.
CLOSE_WAIT_SECONDS = 5.0


def _checked_cursor(value: str) -> str:
    if value and not is_valid_cursor(value):
        raise InvalidArgument("afterCursor: must be a cursor returned by this API")
    return normalized(value) if value else value


class LobNotifierServicer(SubscriberApi, notifier_pb2_grpc.LobNotifierServicer):
    """Publish, ListChanges, StreamChanges and the subscriber RPCs."""

    def __init__(
        self,
        change_log: ChangeLog,
        store: SubscriberStore | None = None,
        admin: SubscriberAdmin | None = None,
        *,
        heartbeat_seconds: int = DEFAULT_HEARTBEAT_SECONDS,
        max_subscribers: int = 100,
        admission: Admission | None = None,
        destinations: DestinationPolicy | None = None,
    ) -> None:
        self._log = change_log
        self._store = store or SubscriberStore(change_log.redis, change_log.keys)
        self._admin = admin or SubscriberAdmin(
            change_log, self._store, max_subscribers=max_subscribers, destinations=destinations
        )
        self._admission = admission or Admission(
            max_waiting=DEFAULT_MAX_WAITING, max_waiting_per_caller=DEFAULT_MAX_WAITING
        )
        self._heartbeat_seconds = heartbeat_seconds
        self._lines = EventLines()
        self._closed = Stop()
        # One per waiting call: set when the call ends (the client went away)
        # or close() is called, so its wait ends at once and its place under
        # the caps is freed without waiting for the next heartbeat's write.
        self._endings: set[asyncio.Event] = set()
        self._reads = 0
        self._no_reads = asyncio.Event()
        self._no_reads.set()

    async def close(self) -> None:
        """Ends every open stream and answers every waiting long-poll now.

        Returns once they have wound down (or after CLOSE_WAIT_SECONDS), so
        the server's grace period is left to the other calls.
        """
        self._closed.set()
        for ending in self._endings:
            ending.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_reads.wait(), CLOSE_WAIT_SECONDS)

    @contextlib.contextmanager
    def _reading(self, context: Any = None) -> Iterator[asyncio.Event]:
        """Counts a call that may wait on the log, for close() to wait on; yields
        the event that ends its waits (the call ended, or close())."""
        ending = Stop()
        if self._closed.is_set():
            ending.set()
        if context is not None and hasattr(context, "add_done_callback"):
            context.add_done_callback(lambda _: ending.set())
        self._endings.add(ending)
        self._reads += 1
        self._no_reads.clear()
        try:
            yield ending
        finally:
            self._endings.discard(ending)
            self._reads -= 1
            if self._reads == 0:
                self._no_reads.set()

    # -- reading ------------------------------------------------------------
    async def _start(self, after_cursor: str, subscriber: str) -> tuple[str, str]:
        """The cursor to read after, and how to name it in an error."""
        cursor = _checked_cursor(after_cursor)
        if not subscriber:
            return cursor, "afterCursor"
        if cursor:
            raise InvalidArgument("give afterCursor or subscriber, not both")
        record = await self._record(subscriber)
        return record.cursor, f"subscriber {subscriber}"

    def _expired(self, gap: LogGap, subject: str, subscriber: str) -> CursorExpired:
        if subscriber:
            then = (
                "bootstrap again (GET /v1/profiles, every page), then move the subscriber "
                f"with SeekSubscriber (POST /v1/subscribers/{subscriber}:seek) to the "
                "listing's changesCursor"
            )
        else:
            then = (
                "bootstrap again: read every page of GET /v1/profiles, then read the "
                "changes after its changesCursor"
            )
        return CursorExpired(
            f"{subject}: {gap}; the log keeps {self._log.retention_text()}. To continue, {then}"
        )

    async def _read(
        self,
        cursor: str,
        count: int,
        block_ms: int,
        *,
        subject: str,
        subscriber: str,
        check_idle: bool = True,
        stop: asyncio.Event | None = None,
        trust_memory: bool | None = None,
    ) -> list[notifier_pb2.ChangeEvent]:
        try:
            return await self._log.read(
                cursor or None,
                count,
                block_ms,
                check_idle=check_idle,
                stop=stop or self._closed,
                trust_memory=trust_memory,
            )
        except LogGap as gap:
            raise self._expired(gap, subject, subscriber) from None

    # -- RPCs ---------------------------------------------------------------
    async def Publish(
        self,
        request: notifier_pb2.PublishRequest,
        context: grpc.aio.ServicerContext[
            notifier_pb2.PublishRequest, notifier_pb2.PublishResponse
        ],
    ) -> notifier_pb2.PublishResponse:
        now = Timestamp()
        now.GetCurrentTime()
        for index, event in enumerate(request.events):
            if event.heartbeat:
                raise InvalidArgument(
                    f"events[{index}].heartbeat: must not be set (heartbeats are not events)"
                )
            if not event.HasField("detect_time"):
                event.detect_time.CopyFrom(now)
        result = await self._log.publish(request.events)
        metrics.EVENTS_PUBLISHED.labels("accepted").inc(result.accepted)
        metrics.EVENTS_PUBLISHED.labels("duplicate").inc(result.duplicates)
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
        cursor, subject = await self._start(request.after_cursor, request.subscriber)
        # Only a call that may wait counts against the caps; a plain pull
        # answers at once.
        admitted = (
            self._admission.admit(caller_key(), "ListChanges")
            if request.wait_seconds
            else contextlib.nullcontext()
        )
        # The read answers at once when events are there, so this waits only
        # when there is nothing yet.
        with admitted, self._reading(context) as ending:
            events = await self._read(
                cursor,
                request.page_size or DEFAULT_PAGE_SIZE,
                request.wait_seconds * 1000,
                subject=subject,
                subscriber=request.subscriber,
                stop=ending,
            )
        return notifier_pb2.ListChangesResponse(
            events=events,
            next_cursor=events[-1].cursor if events else (cursor or request.after_cursor),
            last_cursor=await self._log.last_cursor(),
        )

    async def StreamChanges(
        self,
        request: notifier_pb2.StreamChangesRequest,
        context: grpc.aio.ServicerContext[
            notifier_pb2.StreamChangesRequest, notifier_pb2.ChangeEvent
        ],
    ) -> AsyncIterator[notifier_pb2.ChangeEvent]:
        with self._admission.admit(caller_key(), "StreamChanges"):
            async for messages in self._admitted_stream(request, context):
                for message in messages:
                    yield message

    async def StreamChangeLines(
        self,
        request: notifier_pb2.StreamChangesRequest,
        context: grpc.aio.ServicerContext[notifier_pb2.StreamChangesRequest, HttpBody],
    ) -> AsyncIterator[HttpBody]:
        # The same stream and the same caps as StreamChanges (it is that stream
        # for REST callers), with every message read at once sent as one
        # frame of JSON lines: the gateway passes the bytes through.
        with self._admission.admit(caller_key(), "StreamChanges"):
            async for messages in self._admitted_stream(request, context):
                yield HttpBody(content_type=CONTENT_TYPE, data=self._lines.join(messages))

    async def _admitted_stream(
        self, request: notifier_pb2.StreamChangesRequest, context: Any
    ) -> AsyncIterator[list[notifier_pb2.ChangeEvent]]:
        cursor, subject = await self._start(request.after_cursor, request.subscriber)
        if not cursor:
            # "From now" is pinned to a concrete position before the first
            # wait, so an event published between two waits is never missed.
            cursor = await self._log.head_position() or OLDEST
        heartbeat_seconds = request.heartbeat_seconds or self._heartbeat_seconds
        metrics.OPEN_STREAMS.inc()
        try:
            with self._reading(context) as ending:
                batches = self._stream(
                    cursor, subject, request.subscriber, heartbeat_seconds, ending
                )
                async with contextlib.aclosing(batches):
                    async for batch in batches:
                        yield batch
        finally:
            metrics.OPEN_STREAMS.dec()

    async def _stream(
        self,
        cursor: str,
        subject: str,
        subscriber: str,
        heartbeat_seconds: int,
        ending: asyncio.Event,
    ) -> AsyncGenerator[list[notifier_pb2.ChangeEvent], None]:
        """The stream's messages, in the batches they were read: events, or a heartbeat."""
        first = True
        last_sent = time.monotonic()
        # Runs until the call ends (the client went away) or close() is called;
        # either sets `ending`, which ends a pending wait at once. (grpc
        # normally cancels this task when the client goes away; now and then
        # it learns of it only when the next heartbeat cannot be written.)
        while not ending.is_set():
            quiet_ms = int((time.monotonic() - last_sent) * 1000)
            block_ms = 0 if first else min(STREAM_BLOCK_MS, heartbeat_seconds * 1000 - quiet_ms)
            events = await self._read(
                cursor,
                STREAM_BATCH,
                max(0, block_ms),
                subject=subject,
                subscriber=subscriber,
                check_idle=first,
                stop=ending,
                # A stream's reads come from the shared reader's memory
                # whenever it covers the cursor, its first read included:
                # opening thousands at once costs Redis (almost) nothing.
                trust_memory=True,
            )
            if events:
                yield events
                cursor = events[-1].cursor
                last_sent = time.monotonic()
            elif first or time.monotonic() - last_sent >= heartbeat_seconds:
                if ending.is_set():
                    break
                metrics.HEARTBEATS.inc()
                yield [notifier_pb2.ChangeEvent(cursor=cursor, heartbeat=True)]
                last_sent = time.monotonic()
            first = False


def binding(servicer: notifier_pb2_grpc.LobNotifierServicer) -> ServiceBinding:
    """The servicer as a ServiceBinding for create_server/run_service."""

    def register(server: grpc.aio.Server) -> None:
        notifier_pb2_grpc.add_LobNotifierServicer_to_server(servicer, server)

    return ServiceBinding(SERVICE_NAME, register)
