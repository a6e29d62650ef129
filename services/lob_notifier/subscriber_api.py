"""The subscriber RPCs of LobNotifier: settings, positions, dead letters.

Mixed into LobNotifierServicer (servicer.py), which provides the change
log, the store and the admin these handlers use.

Least privilege. A caller without `Subscribers.Manage` (a `Profiles.Read`
reader) sees each webhook URL without its query string (where receivers
often carry a key, `?code=...`), and may Ack only a subscriber it created
itself; anyone may read statuses and positions.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import grpc

from profilesync.v1 import notifier_pb2
from services.common.auth import Principal, current_principal
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from services.lob_notifier.admin import SOURCE_API, SubscriberAdmin
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.cursors import cursor_key, is_valid_cursor, normalized
from services.lob_notifier.messages import dead_letter_message, start_at_name, subscriber_message
from services.lob_notifier.status import status_of
from services.lob_notifier.subscribers import (
    SubscriberRecord,
    SubscriberSettings,
    SubscriberStore,
)

__all__ = ["SubscriberApi"]

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_DEAD_LETTER_PAGE = 20
# Dead letters carry their events; a page stops growing past this many bytes
# so it stays well under the 16 MiB message limit.
DEAD_LETTER_PAGE_BYTES = 8 * 1024 * 1024

MANAGE_ROLE = "Subscribers.Manage"


def _caller() -> Principal | None:
    """The verified caller; None only on servers without token checks (in-process tests)."""
    try:
        return current_principal()
    except Unauthenticated:
        return None


def _manages(caller: Principal | None) -> bool:
    return caller is None or MANAGE_ROLE in caller.roles


def reader_url(url: str) -> str:
    """The URL as a reader may see it: scheme, host, port and path only."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class SubscriberApi:
    _log: ChangeLog
    _store: SubscriberStore
    _admin: SubscriberAdmin

    async def _record(self, name: str) -> SubscriberRecord:
        record = await self._store.get(name)
        if record is None:
            raise NotFound(f"no subscriber named {name}")
        return record

    async def _message(self, record: SubscriberRecord) -> notifier_pb2.Subscriber:
        message = subscriber_message(record, await status_of(self._log, self._store, record))
        if not _manages(_caller()):
            message.url = reader_url(record.url)
        return message

    async def _checked_position(self, field: str, cursor: str) -> str:
        if not is_valid_cursor(cursor):
            raise InvalidArgument(f"{field}: must be a cursor returned by this API")
        cursor = normalized(cursor)
        latest = await self._log.latest_position()
        if cursor_key(cursor) > cursor_key(latest):
            raise InvalidArgument(f"{field}: {cursor} is after the newest event ({latest})")
        return cursor

    async def PutSubscriber(
        self, request: notifier_pb2.PutSubscriberRequest, context: Context
    ) -> notifier_pb2.Subscriber:
        settings = SubscriberSettings(
            request.name,
            url=request.url,
            secret=request.secret,
            source=SOURCE_API,
            owner=caller.subject if (caller := _caller()) is not None else "",
        )
        record, _created = await self._admin.put(settings, start_at=start_at_name(request.start_at))
        return await self._message(record)

    async def GetSubscriber(
        self, request: notifier_pb2.GetSubscriberRequest, context: Context
    ) -> notifier_pb2.Subscriber:
        return await self._message(await self._record(request.name))

    async def ListSubscribers(
        self, request: notifier_pb2.ListSubscribersRequest, context: Context
    ) -> notifier_pb2.ListSubscribersResponse:
        records = await self._store.all()
        return notifier_pb2.ListSubscribersResponse(
            subscribers=[await self._message(record) for record in records]
        )

    async def DeleteSubscriber(
        self, request: notifier_pb2.DeleteSubscriberRequest, context: Context
    ) -> notifier_pb2.DeleteSubscriberResponse:
        if not await self._admin.delete(request.name):
            raise NotFound(f"no subscriber named {request.name}")
        return notifier_pb2.DeleteSubscriberResponse()

    async def Ack(
        self, request: notifier_pb2.AckRequest, context: Context
    ) -> notifier_pb2.Subscriber:
        record = await self._record(request.name)
        caller = _caller()
        if not _manages(caller) and (
            caller is None or not record.owner or record.owner != caller.subject
        ):
            raise PermissionDenied(
                f"Ack: subscriber {request.name} belongs to another caller; only the caller "
                f"that created it or one with the {MANAGE_ROLE} role may move it"
            )
        if record.is_webhook:
            raise FailedPrecondition(
                f"subscriber {request.name} receives webhooks: its position moves when the "
                "receiver answers 2xx (SeekSubscriber moves it by hand)"
            )
        cursor = await self._checked_position("cursor", request.cursor)
        if await self._store.ack(request.name, cursor) is None:
            raise NotFound(f"no subscriber named {request.name}")
        return await self._message(await self._record(request.name))

    async def SeekSubscriber(
        self, request: notifier_pb2.SeekSubscriberRequest, context: Context
    ) -> notifier_pb2.Subscriber:
        await self._record(request.name)
        to_end = request.to != notifier_pb2.START_POSITION_UNSPECIFIED
        if bool(request.cursor) == to_end:
            raise InvalidArgument("give exactly one of cursor and to")
        if to_end:
            cursor = await self._admin.start_cursor(start_at_name(request.to))
        else:
            cursor = await self._checked_position("cursor", request.cursor)
        if not await self._store.seek(request.name, cursor):
            raise NotFound(f"no subscriber named {request.name}")
        return await self._message(await self._record(request.name))

    async def ListDeadLetters(
        self, request: notifier_pb2.ListDeadLettersRequest, context: Context
    ) -> notifier_pb2.ListDeadLettersResponse:
        await self._record(request.name)
        wanted = request.page_size or DEFAULT_DEAD_LETTER_PAGE
        records, more = await self._store.dead_letters(
            request.name, after=request.page_token, count=wanted
        )
        response = notifier_pb2.ListDeadLettersResponse()
        size = 0
        for record in records:
            events = await self._log.between(record.first, record.last, record.count + 1)
            message = dead_letter_message(record, events)
            size += message.ByteSize()
            if response.dead_letters and size > DEAD_LETTER_PAGE_BYTES:
                more = True
                break
            response.dead_letters.append(message)
        if more and response.dead_letters:
            response.next_page_token = response.dead_letters[-1].id
        return response

    async def ReplayDeadLetters(
        self, request: notifier_pb2.ReplayDeadLettersRequest, context: Context
    ) -> notifier_pb2.ReplayDeadLettersResponse:
        if bool(request.ids) == request.all:
            raise InvalidArgument("give the ids to replay, or all: true (not both)")
        for index, dead_letter_id in enumerate(request.ids):
            if not is_valid_cursor(dead_letter_id):
                raise InvalidArgument(
                    f"ids[{index}]: must be a dead letter id returned by this API"
                )
        queued = await self._store.queue_replay(
            request.name, None if request.all else [normalized(i) for i in request.ids]
        )
        if queued is None:
            raise NotFound(f"no subscriber named {request.name}")
        count, missing = queued
        return notifier_pb2.ReplayDeadLettersResponse(queued=count, not_found=missing)
