"""close(): what SIGTERM does to open streams and waiting long-polls, without the grace period."""

from __future__ import annotations

import asyncio

import grpc
from notifier_harness import Served

from profilesync.v1 import notifier_pb2


async def test_close_ends_open_streams_and_answers_waiting_long_polls(served: Served) -> None:
    streams = [served.stub.StreamChanges(notifier_pb2.StreamChangesRequest()) for _ in range(3)]
    for call in streams:
        first = await asyncio.wait_for(call.read(), timeout=30)
        assert first.heartbeat  # open and waiting
    waiting = notifier_pb2.ListChangesRequest(after_cursor="0-0", wait_seconds=60)
    poll = asyncio.ensure_future(served.stub.ListChanges(waiting))

    await served.servicer.close()

    for call in streams:
        # The stream ends cleanly; the client resumes from its last cursor elsewhere.
        assert await asyncio.wait_for(call.read(), timeout=30) == grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK
    page = await asyncio.wait_for(poll, timeout=30)  # well before its 60 s wait
    assert list(page.events) == [] and page.next_cursor == "0-0"
