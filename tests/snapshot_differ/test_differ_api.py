"""The SnapshotDiffer gRPC API on a real server on loopback: StartSync,
GetSync, ListSyncs and ApproveDeletes, and their errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from harness import DifferHarness, make_profile

from devtools.local_grpc import start_server
from profilesync.v1 import differ_pb2, differ_pb2_grpc
from services.snapshot_differ.servicer import SnapshotDifferServicer, binding


@pytest.fixture
async def differ(harness: DifferHarness) -> AsyncIterator[differ_pb2_grpc.SnapshotDifferStub]:
    servicer = SnapshotDifferServicer(harness.settings, harness.runner)
    server, port = await start_server(binding(servicer), settings=harness.settings.server)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield differ_pb2_grpc.SnapshotDifferStub(channel)
    finally:
        await channel.close(None)
        await server.stop(None)
        await harness.runner.wait_all()


async def until_ended(
    differ: differ_pb2_grpc.SnapshotDifferStub, run_id: str
) -> differ_pb2.SyncRun:
    for _ in range(600):
        run = await differ.GetSync(differ_pb2.GetSyncRequest(run_id=run_id), timeout=30)
        if run.state != differ_pb2.RUNNING:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still running")


async def test_a_held_run_is_approved_over_grpc(
    harness: DifferHarness, differ: differ_pb2_grpc.SnapshotDifferStub
) -> None:
    profiles = [make_profile(i) for i in range(10)]
    harness.set_profiles(profiles)
    started = await differ.StartSync(differ_pb2.StartSyncRequest(), timeout=30)
    assert started.state == differ_pb2.RUNNING
    first = await until_ended(differ, started.run_id)
    assert first.state == differ_pb2.SUCCEEDED
    await harness.new_events()

    harness.set_profiles(profiles[:7])
    started = await differ.StartSync(differ_pb2.StartSyncRequest(), timeout=30)
    held = await until_ended(differ, started.run_id)
    assert held.state == differ_pb2.HELD_FOR_DELETES and held.counts.held_deletes == 3

    request = differ_pb2.ApproveDeletesRequest(run_id=held.run_id)
    approving = await differ.ApproveDeletes(request, timeout=30)
    assert approving.state == differ_pb2.RUNNING
    done = await until_ended(differ, held.run_id)
    assert done.state == differ_pb2.SUCCEEDED and done.counts.deleted == 3
    assert len(await harness.new_events()) == 3

    listed = await differ.ListSyncs(differ_pb2.ListSyncsRequest(page_size=5), timeout=30)
    assert [run.run_id for run in listed.runs] == [held.run_id, first.run_id]  # newest first

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await differ.ApproveDeletes(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is not held for deletes (state SUCCEEDED)" in (refused.value.details() or "")


async def test_a_dry_run_over_grpc(
    harness: DifferHarness, differ: differ_pb2_grpc.SnapshotDifferStub
) -> None:
    harness.set_profiles([make_profile(i) for i in range(4)])
    started = await differ.StartSync(differ_pb2.StartSyncRequest(dry_run=True), timeout=30)
    run = await until_ended(differ, started.run_id)
    assert run.dry_run and run.state == differ_pb2.SUCCEEDED and run.counts.created == 4
    assert await harness.new_events() == []


@pytest.mark.parametrize(
    ("call", "code", "words"),
    [
        ("GetSync", grpc.StatusCode.NOT_FOUND, "not found"),
        ("ApproveDeletes", grpc.StatusCode.NOT_FOUND, "not found"),
    ],
)
async def test_unknown_runs_are_not_found(
    differ: differ_pb2_grpc.SnapshotDifferStub, call: str, code: grpc.StatusCode, words: str
) -> None:
    request_type = (
        differ_pb2.GetSyncRequest if call == "GetSync" else differ_pb2.ApproveDeletesRequest
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(differ, call)(request_type(run_id="20260101T000000000Z-0"), timeout=30)
    assert error.value.code() == code and words in (error.value.details() or "")


async def test_bad_requests_name_the_field(differ: differ_pb2_grpc.SnapshotDifferStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await differ.ApproveDeletes(differ_pb2.ApproveDeletesRequest(run_id="../x"), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("runId:")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await differ.StartSync(
            differ_pb2.StartSyncRequest(shard_index=3, shard_count=2), timeout=30
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shardIndex must be below shardCount (2)" in (error.value.details() or "")


async def test_a_second_start_is_refused_with_the_running_run(
    harness: DifferHarness, differ: differ_pb2_grpc.SnapshotDifferStub
) -> None:
    harness.set_profiles([make_profile(i) for i in range(3)])
    # Hold the shard as a running run does.
    await harness.redis.set("profilesync:lock:s0of1", "20260101T000000000Z-busy", px=60_000)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await differ.StartSync(differ_pb2.StartSyncRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "run 20260101T000000000Z-busy" in (error.value.details() or "")
