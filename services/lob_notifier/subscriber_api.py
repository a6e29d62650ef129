"""The subscriber RPCs of LobNotifier: settings, positions, dead letters.

Mixed into LobNotifierServicer (servicer.py), which provides the change
log, the store and the admin these handlers use.
"""

from __future__ import annotations

from typing import Any

import grpc

from profilesync.v1 import notifier_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.lob_notifier.admin import SOURCE_API, SubscriberAdmin
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.cursors import cursor_key, is_valid_cursor, normalized
from services.lob_notifier.messages import dead_letter_message, start_at_name, subscriber_message
from services.lob_notifier.status import status_of
from services.lob_notifier.subscribers import SubscriberRecord, SubscriberStore

__all__ = ["SubscriberApi"]

Context = grpc.aio.ServicerContext[Any, Any]

DEFAULT_DEAD_LETTER_PAGE = 20
# Dead letters carry their events; a page stops growing past this many bytes
# so it stays well under the 16 MiB message limit.
DEAD_LETTER_PAGE_BYTES = 8 * 1024 * 1024


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
        return subscriber_message(record, await status_of(self._log, self._store, record))

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
        record, _created = await self._admin.put(
            request.name,
            url=request.url,
            secret=request.secret,
            start_at=start_at_name(request.start_at),
            source=SOURCE_API,
        )
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
