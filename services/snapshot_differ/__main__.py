"""`python -m services.snapshot_differ [serve | run | sweep | approve-deletes RUN_ID]`.

`serve` (the default) answers the SnapshotDiffer gRPC API. `sweep` reads
every user of one shard once per SYNC_INTERVAL_SECONDS, the reads spread
evenly over it, run after run, until stopped (the chart's default). `run`
performs one sync of one shard and exits: what the Kubernetes CronJob calls. It draws
a progress bar when stderr is a terminal and logs JSON otherwise; the last
line on stdout is the run as JSON. `approve-deletes` releases a run held
because it would delete too many users.

Exit codes:
  0  succeeded (approve-deletes: approved and committed)
  1  failed (approve-deletes: refused or failed)
  2  configuration error
  3  partial: some profiles could not be read, their users were left as they were
  4  a run of the shard is already going
  5  held for deletes: waiting for approve-deletes
A dry run exits with the code of the run it would have been.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from google.protobuf import json_format
from prometheus_client import REGISTRY

from profilesync.v1 import differ_pb2, extender_pb2_grpc, notifier_pb2_grpc
from services.common.entra import MsalTokens
from services.common.errors import AlreadyRunning, ProfileSyncError
from services.common.grpc_clients import authenticated_channel
from services.common.logs import configure_logging
from services.common.redis_client import connect
from services.common.server import run_service
from services.common.settings import ConfigError, settings_or_exit
from services.search.index import SearchIndex
from services.snapshot_differ.cluster import KubernetesJobLauncher
from services.snapshot_differ.metrics import SyncRunsCollector
from services.snapshot_differ.object_store import open_store
from services.snapshot_differ.progress import ProgressBar
from services.snapshot_differ.run import SyncRunner
from services.snapshot_differ.servicer import SnapshotDifferServicer, binding
from services.snapshot_differ.settings import DifferSettings
from services.snapshot_differ.sweeper import sweep

EXIT_CODES = {
    differ_pb2.SUCCEEDED: 0,
    differ_pb2.FAILED: 1,
    differ_pb2.PARTIAL: 3,
    differ_pb2.HELD_FOR_DELETES: 5,
}
EXIT_ALREADY_RUNNING = 4
# A sweeper asked to stop records its run as interrupted and exits; if that
# takes longer than this, it prints every thread's stack and exits anyway
# (a crash at any point is safe: the next run takes over), inside the pod's
# 30 s termination grace period.
STOP_GRACE_SECONDS = 20


@asynccontextmanager
async def open_runner(
    settings: DifferSettings, *, serving: bool = False
) -> AsyncIterator[SyncRunner]:
    # REDIS_CLUSTER is read here, where the client is made: a bad value exits
    # like any other setting.
    redis = settings_or_exit(
        lambda: connect(settings.redis_url), "snapshot_differ: configuration error"
    )
    tokens = MsalTokens(settings.entra)
    extender = authenticated_channel(settings.extender_addr, tokens, settings.entra.app_scopes)
    notifier = authenticated_channel(settings.notifier_addr, tokens, settings.entra.app_scopes)
    launcher = None
    if serving and settings.sync_mode == "kubernetes":
        assert settings.namespace is not None and settings.cronjob_name is not None
        launcher = KubernetesJobLauncher(settings.namespace, settings.cronjob_name)
    try:
        yield SyncRunner(
            settings,
            redis,
            open_store(settings.snapshot_store, s3=settings.s3),
            extender_pb2_grpc.ProfileExtenderStub(extender),
            notifier_pb2_grpc.LobNotifierStub(notifier),
            launcher=launcher,
            search_index=SearchIndex(redis),
        )
    finally:
        await extender.close(None)
        await notifier.close(None)
        await redis.aclose()


async def serve(settings: DifferSettings) -> None:
    async with open_runner(settings, serving=True) as runner:
        servicer = SnapshotDifferServicer(settings, runner)
        # Only the server exports run outcomes: `run` processes end before a
        # scrape, and their runs are in the records this collector reads.
        collector = SyncRunsCollector(runner.records, asyncio.get_running_loop())
        REGISTRY.register(collector)

        async def stop_runs() -> None:
            REGISTRY.unregister(collector)
            runner.cancel_all()
            await runner.wait_all()

        await run_service(
            "snapshot_differ",
            settings,
            [binding(servicer)],
            on_stop=stop_runs,
        )


def _print_run(run: differ_pb2.SyncRun) -> None:
    print(json.dumps(json_format.MessageToDict(run)), flush=True)


async def run_once(settings: DifferSettings, *, dry_run: bool, progress: bool) -> int:
    bar = ProgressBar(sys.stderr) if progress else None
    async with open_runner(settings) as runner:
        try:
            run = await runner.run_to_end(
                settings.shard_index,
                settings.shard_count,
                run_id=settings.run_id,
                dry_run=dry_run,
                observer=bar,
            )
        except AlreadyRunning as error:
            print(f"snapshot_differ: {error}", file=sys.stderr)
            return EXIT_ALREADY_RUNNING
    if bar is not None:
        bar.close(run)
    _print_run(run)
    return EXIT_CODES.get(run.state, 1)


async def sweep_until_stopped(settings: DifferSettings, runs: int | None) -> int:
    async with open_runner(settings) as runner:
        task = asyncio.create_task(
            sweep(
                runner,
                shard_index=settings.shard_index,
                shard_count=settings.shard_count,
                interval_seconds=settings.interval_seconds,
                runs=runs,
            )
        )

        loop = asyncio.get_running_loop()
        stopping = False

        def stop(signum: int, frame: object) -> None:
            # The running run is recorded as interrupted; the next sweeper takes over.
            # A plain handler, not the loop's: it runs even while the loop is stuck,
            # so the grace period is armed whatever holds the process. Armed once:
            # a second signal must not push the deadline back.
            nonlocal stopping
            if stopping:
                return
            stopping = True
            faulthandler.dump_traceback_later(STOP_GRACE_SECONDS, exit=True)
            loop.call_soon_threadsafe(task.cancel)

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        try:
            finished = await task
        except asyncio.CancelledError:
            return 0
    for run in finished:
        _print_run(run)
    return EXIT_CODES.get(finished[-1].state, 1) if finished else 0


async def approve_once(settings: DifferSettings, run_id: str) -> int:
    async with open_runner(settings) as runner:
        try:
            run = await runner.approve_deletes(run_id)
        except AlreadyRunning as error:
            print(f"snapshot_differ: {error}", file=sys.stderr)
            return EXIT_ALREADY_RUNNING
        except ProfileSyncError as error:
            print(f"snapshot_differ: {error}", file=sys.stderr)
            return 1
    _print_run(run)
    return EXIT_CODES.get(run.state, 1)


class _TerminalLogHandler(logging.Handler):
    """Warnings as plain lines above the progress bar (which redraws itself)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"\r\x1b[K{record.levelname.lower()}: {record.getMessage()}\n")
        sys.stderr.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.snapshot_differ",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="answer the SnapshotDiffer gRPC API (the default)")
    run = commands.add_parser("run", help="perform one sync of one shard and exit")
    run.add_argument("--shard-index", type=int, help="overrides SHARD_INDEX / JOB_COMPLETION_INDEX")
    run.add_argument("--shard-count", type=int, help="overrides SHARD_COUNT")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="compare and report only: publish nothing, commit nothing, write no snapshot",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar (default: when stderr is a terminal)",
    )
    sweeper = commands.add_parser(
        "sweep", help="read the shard once per SYNC_INTERVAL_SECONDS, paced, until stopped"
    )
    sweeper.add_argument(
        "--runs", type=int, default=None, help="stop after this many runs (default: never)"
    )
    approve = commands.add_parser(
        "approve-deletes", help="publish a held run's deletions and commit it"
    )
    approve.add_argument("run_id", help="the held run's id (see GET /v1/syncs)")
    return parser


def _settings(args: argparse.Namespace) -> DifferSettings:
    """The environment's settings, with `run`'s shard options applied over them."""
    settings = DifferSettings.from_env()
    if args.command == "run" and (args.shard_index is not None or args.shard_count is not None):
        index = settings.shard_index if args.shard_index is None else args.shard_index
        count = settings.shard_count if args.shard_count is None else args.shard_count
        if not 0 <= index < count:
            raise ConfigError(f"--shard-index must be in [0, {count}), got {index}")
        settings = replace(settings, shard_index=index, shard_count=count)
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    settings = settings_or_exit(lambda: _settings(args), "snapshot_differ: configuration error")
    configure_logging("snapshot_differ", settings.server.log_level)
    if command == "run":
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        if progress:
            # A person is watching: the bar, and warnings as plain lines.
            handler = _TerminalLogHandler(logging.WARNING)
            logging.getLogger().handlers[:] = [handler]
        return asyncio.run(
            run_once(settings, dry_run=args.dry_run or settings.dry_run, progress=progress)
        )
    if command == "approve-deletes":
        return asyncio.run(approve_once(settings, args.run_id))
    if command == "sweep":
        return asyncio.run(sweep_until_stopped(settings, args.runs))
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
