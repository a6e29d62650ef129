"""The in-process notifier the tests talk to (a uniquely named module, not conftest)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from devtools.local_grpc import start_server
from profilesync.v1 import notifier_pb2_grpc
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.destinations import DestinationPolicy
from services.lob_notifier.servicer import LobNotifierServicer, binding
from services.lob_notifier.subscribers import SubscriberStore

# The tests' receivers listen on loopback, which the notifier refuses unless
# the operator names it (as the embedded default does).
LOOPBACK = DestinationPolicy.parse("127.0.0.0/8,::1/128")


@dataclass
class Served:
    """A notifier on loopback: its stub, and its parts for tests that look inside."""

    stub: notifier_pb2_grpc.LobNotifierStub
    servicer: LobNotifierServicer
    change_log: ChangeLog
    store: SubscriberStore


@contextlib.asynccontextmanager
async def running_notifier(change_log: ChangeLog, **options: Any) -> AsyncIterator[Served]:
    """A LobNotifierServicer on `change_log`, served on a free loopback port."""
    store = SubscriberStore(change_log.redis, change_log.keys)
    options.setdefault("destinations", LOOPBACK)
    servicer = LobNotifierServicer(change_log, store, **options)
    server, port = await start_server(binding(servicer), shutdown_grace_seconds=0.5)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(notifier_pb2_grpc.LobNotifierStub(channel), servicer, change_log, store)
    finally:
        await channel.close()
        await servicer.close()
        await server.stop(None)
