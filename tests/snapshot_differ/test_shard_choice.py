"""Who may choose the shard a StartSync runs: the deployment's own shard for any
caller StartSync admits; another shard of the configured count only with the
operator's role (Profiles.Sync); another shard count for nobody.

The servicer is called as the gRPC interceptor calls it, with the verified
caller set; the runner is the real one (the harness's scripted extender)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import grpc
import pytest
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2
from services.common.auth import Principal, set_principal
from services.common.errors import InvalidArgument, PermissionDenied
from services.snapshot_differ.servicer import SnapshotDifferServicer

SHARDS = 4


@pytest.fixture
def servicer(harness: DifferHarness) -> SnapshotDifferServicer:
    # A deployment of four shards whose own (default) shard is 1.
    settings = dataclasses.replace(harness.settings, shard_index=1, shard_count=SHARDS)
    harness.set_profiles([make_profile(i) for i in range(8)])
    return SnapshotDifferServicer(settings, harness.runner)


@pytest.fixture
def caller(request: pytest.FixtureRequest) -> Iterator[None]:
    roles = frozenset(request.param)
    principal = Principal("app-oid", "app-id", False, roles, frozenset(), "token")
    set_principal(principal)
    yield
    set_principal(None)


async def start(
    servicer: SnapshotDifferServicer, harness: DifferHarness, **shard: int
) -> differ_pb2.SyncRun:
    context: grpc.aio.ServicerContext[object, object] = None  # type: ignore[assignment]
    run = await servicer.StartSync(differ_pb2.StartSyncRequest(**shard), context)
    await harness.runner.wait_all()
    return run


@pytest.mark.parametrize("caller", [["Profiles.Read"]], indirect=True)
async def test_a_reader_runs_the_deployments_own_shard(
    servicer: SnapshotDifferServicer, harness: DifferHarness, caller: None
) -> None:
    run = await start(servicer, harness)
    assert (run.shard_index, run.shard_count) == (1, SHARDS)
    named = await start(servicer, harness, shard_index=1, shard_count=SHARDS)
    assert (named.shard_index, named.shard_count) == (1, SHARDS)


@pytest.mark.parametrize("caller", [["Profiles.Read"]], indirect=True)
@pytest.mark.parametrize(("index", "count"), [(0, SHARDS), (0, 2), (1, 2), (1, 1024)])
async def test_a_reader_cannot_name_another_shard(
    servicer: SnapshotDifferServicer, harness: DifferHarness, caller: None, index: int, count: int
) -> None:
    with pytest.raises(PermissionDenied) as refused:
        await start(servicer, harness, shard_index=index, shard_count=count)
    assert str(refused.value) == (
        f"choosing the shard (shardIndex {index}, shardCount {count}) needs the app role "
        "Profiles.Sync; leave shardIndex and shardCount out to sync this deployment's "
        f"shard (shard 1 of {SHARDS})"
    )
    assert await harness.runner.records.newest(10) == []


@pytest.mark.parametrize("caller", [["Profiles.Sync"]], indirect=True)
async def test_the_operator_names_any_shard_of_the_configured_count(
    servicer: SnapshotDifferServicer, harness: DifferHarness, caller: None
) -> None:
    run = await start(servicer, harness, shard_index=3, shard_count=SHARDS)
    assert (run.shard_index, run.shard_count) == (3, SHARDS)
    with pytest.raises(InvalidArgument) as refused:
        await start(servicer, harness, shard_index=0, shard_count=2)
    assert "shardCount must be this deployment's shard count (SHARD_COUNT=4), got 2" in str(
        refused.value
    )
    with pytest.raises(InvalidArgument, match="shardIndex must be below shardCount"):
        await start(servicer, harness, shard_index=4, shard_count=SHARDS)
    assert [r.run_id for r in await harness.runner.records.newest(10)] == [run.run_id]
