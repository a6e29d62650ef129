"""`python -m services.snapshot_differ [serve|run]`.

`serve` (the default) answers the SnapshotDiffer gRPC API; `run` performs one
sync of one shard and exits — what the Kubernetes CronJob calls. Exit codes
of `run`: 0 succeeded, 3 partial, 1 failed, 2 configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from google.protobuf import json_format

from profilesync.v1 import differ_pb2, differ_pb2_grpc, extender_pb2_grpc, notifier_pb2_grpc
from services.common.auth import TokenVerifier
from services.common.config import ConfigError
from services.common.entra import MsalTokens
from services.common.errors import AlreadyRunning
from services.common.grpc_clients import authenticated_channel
from services.common.logs import configure_logging
from services.common.redis_client import connect
from services.common.server import ServiceBinding, run_service
from services.snapshot_differ.config import DifferSettings
from services.snapshot_differ.object_store import open_store
from services.snapshot_differ.run import SyncRunner
from services.snapshot_differ.servicer import SnapshotDifferServicer

SERVICE_NAME = "profilesync.v1.SnapshotDiffer"
EXIT_CODES = {differ_pb2.SUCCEEDED: 0, differ_pb2.PARTIAL: 3}


@asynccontextmanager
async def open_runner(settings: DifferSettings) -> AsyncIterator[SyncRunner]:
    redis = connect(settings.redis_url)
    tokens = MsalTokens(settings.entra)
    extender = authenticated_channel(settings.extender_addr, tokens, settings.entra.app_scopes)
    notifier = authenticated_channel(settings.notifier_addr, tokens, settings.entra.app_scopes)
    try:
        yield SyncRunner(
            settings,
            redis,
            open_store(settings.snapshot_store),
            extender_pb2_grpc.ProfileExtenderStub(extender),
            notifier_pb2_grpc.LobNotifierStub(notifier),
        )
    finally:
        await extender.close(None)
        await notifier.close(None)
        await redis.aclose()


async def serve(settings: DifferSettings) -> None:
    async with open_runner(settings) as runner:
        servicer = SnapshotDifferServicer(settings, runner)
        binding = ServiceBinding(
            SERVICE_NAME,
            lambda server: differ_pb2_grpc.add_SnapshotDifferServicer_to_server(servicer, server),
        )

        async def stop_runs() -> None:
            runner.cancel_all()
            await runner.wait_all()

        await run_service(
            "snapshot_differ",
            settings.server,
            [binding],
            verifier=TokenVerifier(settings.entra),
            on_stop=stop_runs,
        )


async def run_once(settings: DifferSettings) -> int:
    async with open_runner(settings) as runner:
        try:
            run = await runner.run_to_end(settings.shard_index, settings.shard_count)
        except AlreadyRunning as error:
            print(f"snapshot_differ: {error}", file=sys.stderr)
            return 4
    print(json.dumps(json_format.MessageToDict(run)), flush=True)
    return EXIT_CODES.get(run.state, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.snapshot_differ", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["serve", "run"], default="serve")
    parser.add_argument(
        "--shard-index", type=int, help="overrides SHARD_INDEX / JOB_COMPLETION_INDEX"
    )
    parser.add_argument("--shard-count", type=int, help="overrides SHARD_COUNT")
    args = parser.parse_args(argv)
    try:
        settings = DifferSettings.from_env()
        if args.shard_index is not None or args.shard_count is not None:
            index = settings.shard_index if args.shard_index is None else args.shard_index
            count = settings.shard_count if args.shard_count is None else args.shard_count
            if not 0 <= index < count:
                raise ConfigError(f"--shard-index must be in [0, {count}), got {index}")
            settings = replace(settings, shard_index=index, shard_count=count)
    except ConfigError as error:
        print(f"snapshot_differ: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging("snapshot_differ", settings.server.log_level)
    if args.command == "run":
        return asyncio.run(run_once(settings))
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
