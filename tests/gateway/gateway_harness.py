"""The gateway tests' harness: a small gRPC backend, and a gateway started in front of it."""

from __future__ import annotations

import asyncio
import os
import pathlib
import threading
from collections.abc import AsyncIterator

import grpc
from google.api.httpbody_pb2 import HttpBody  # type: ignore[import-untyped]  # ships no stubs
from google.protobuf import timestamp_pb2

from devtools.local_grpc import start_server
from devtools.processes import ManagedProcess, python_module
from profilesync.v1 import (
    extender_pb2,
    extender_pb2_grpc,
    notifier_pb2,
    notifier_pb2_grpc,
    profile_pb2,
)
from services.common.errors import NotFound
from services.lob_notifier.json_lines import CONTENT_TYPE, event_line
from services.lob_notifier.servicer import binding as notifier_binding
from services.profile_extender.servicer import binding as extender_binding

ROOT = pathlib.Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
STREAMED_EVENTS = 3


def sample_profile(user_id: str) -> profile_pb2.Profile:
    # Only some fields set: the gateway must still print the empty ones.
    return profile_pb2.Profile(
        id=user_id,
        user_principal_name=f"{user_id}@contoso.example",
        display_name="Adele Vance",
        about_me="Retail manager",
        skills=["retail", "forecasting"],
        version="0" * 64,
        fetch_time=timestamp_pb2.Timestamp(seconds=1_700_000_000),
    )


def sample_event(index: int) -> notifier_pb2.ChangeEvent:
    return notifier_pb2.ChangeEvent(
        event_id=f"event-{index}",
        cursor=f"1700000000000-{index}",
        run_id="run-1",
        user_id="u1",
        kind=notifier_pb2.UPDATED,
        changed_fields=["skills"],
        after=sample_profile("u1"),
        origin=notifier_pb2.SHAREPOINT,
    )


class Extender(extender_pb2_grpc.ProfileExtenderServicer):
    async def GetProfile(
        self, request: extender_pb2.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.Profile:
        if request.id != "u1":
            raise NotFound(f"no user {request.id}")
        return sample_profile(request.id)


class Notifier(notifier_pb2_grpc.LobNotifierServicer):
    async def ListChanges(
        self, request: notifier_pb2.ListChangesRequest, context: grpc.aio.ServicerContext
    ) -> notifier_pb2.ListChangesResponse:
        events = [sample_event(i) for i in range(min(request.page_size or 100, 2))]
        return notifier_pb2.ListChangesResponse(events=events, next_cursor=events[-1].cursor)

    async def StreamChanges(
        self, request: notifier_pb2.StreamChangesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[notifier_pb2.ChangeEvent]:
        for index in range(STREAMED_EVENTS):
            yield sample_event(index)
            # Spaced out, so the events cross the gateway as separate chunks.
            await asyncio.sleep(0.05)

    async def StreamChangeLines(
        self, request: notifier_pb2.StreamChangesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[HttpBody]:
        # The notifier's REST stream: the same events as JSON lines.
        async for event in self.StreamChanges(request, context):
            yield HttpBody(content_type=CONTENT_TYPE, data=event_line(event))


class Backend:
    """The servicers behind the project's server bootstrap, on a loop in its own thread.

    A thread of its own lets module-scoped fixtures share one backend while
    each test keeps its own event loop.
    """

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None

    def start(self) -> Backend:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._server, self.port = await start_server(
            extender_binding(Extender()), notifier_binding(Notifier())
        )

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def gateway_env(backend_port: int, work_dir: pathlib.Path) -> dict[str, str]:
    address = f"127.0.0.1:{backend_port}"
    return {
        **os.environ,
        "EXTENDER_ADDR": address,
        "DIFFER_ADDR": address,
        "NOTIFIER_ADDR": address,
        "GATEWAY_PORT": "0",
        "GATEWAY_DESCRIPTOR_SET": str(DESCRIPTOR_SET),
        "READY_FILE": str(work_dir / "gateway.ready"),
        "STATE_DIR": str(work_dir / "state"),
    }


def start_gateway(backend_port: int, work_dir: pathlib.Path) -> ManagedProcess:
    process = ManagedProcess(
        "gateway",
        python_module("services.gateway"),
        log_dir=work_dir,
        env=gateway_env(backend_port, work_dir),
        ready_file=work_dir / "gateway.ready",
        cwd=ROOT,
    ).start()
    try:
        process.wait_ready(60)
    except BaseException:
        process.stop()
        raise
    return process
