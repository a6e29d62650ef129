"""A primary of the Redis Cluster lost in the middle of a sync (no replica to
take over, so its slots have no owner until it comes back): the run ends
FAILED, calls meanwhile answer UNAVAILABLE (HTTP 503, "retry"), and the rerun
once the node is back delivers every change to the LOB app exactly once, and
nothing else."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import pytest
from harness import Context, DifferHarness, ScriptedExtender, make_profile
from redis.asyncio.cluster import RedisCluster as ClusterClient

from devtools.devstack.redis_cluster import RedisCluster, start_redis_cluster
from profilesync.v1 import differ_pb2, extender_pb2, notifier_pb2, notifier_pb2_grpc
from services.common.errors import AlreadyRunning
from services.common.redis_client import connect
from services.common.redis_keys import baseline_key

USERS = 40
EDITED = range(0, USERS, 2)  # every second user changes between the two syncs
KILL_AFTER = 18  # profiles streamed before the primary is lost


class ExtenderLosingRedis(ScriptedExtender):
    """Streams the profiles, and calls `on_item` before the item numbered
    `KILL_AFTER` of the first stream it serves after being armed."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: Callable[[], None] | None = None

    async def ListProfiles(
        self, request: extender_pb2.ListProfilesRequest, context: Context
    ) -> AsyncIterator[extender_pb2.ListProfilesItem]:
        sent = 0
        async for item in super().ListProfiles(request, context):
            if sent == KILL_AFTER and self.armed is not None:
                lose, self.armed = self.armed, None
                lose()
            sent += 1
            yield item


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[RedisCluster]:
    # Persistent nodes: the lost primary comes back with its data, as a
    # durable ElastiCache node does; without a replica its slots wait for it.
    started = start_redis_cluster(tmp_path / "cluster", persistent=True)
    try:
        yield started
    finally:
        started.stop()


async def test_a_primary_lost_mid_sync_fails_the_run_and_the_rerun_delivers_each_change_once(
    cluster: RedisCluster, tmp_path: pathlib.Path
) -> None:
    client = connect(cluster.url)
    assert isinstance(client, ClusterClient)
    harness = DifferHarness(client, cluster.url, tmp_path / "store")
    harness.extender = extender = ExtenderLosingRedis()
    try:
        async with harness:
            profiles = [make_profile(i) for i in range(USERS)]
            harness.set_profiles(profiles)
            first = await harness.runner.run_to_end(0, 1)
            assert first.state == differ_pb2.SUCCEEDED
            assert len(await harness.new_events()) == USERS

            for i in EDITED:
                profiles[i]["jobTitle"] = f"Lead {i}"
            harness.set_profiles(profiles)
            # The primary holding the shard's baseline.
            owner = client.get_node_from_key(baseline_key("s0of1", "digests"))
            lost = cluster.index_of(int(owner.port))
            extender.armed = lambda: cluster.kill(lost)

            broken = await harness.runner.run_to_end(0, 1)
            assert broken.state == differ_pb2.FAILED, broken
            assert broken.error.startswith("Redis unavailable, retry"), broken.error

            # Until the node is back, a call that needs Redis answers
            # UNAVAILABLE (503 over REST), never INTERNAL.
            notifier = notifier_pb2_grpc.LobNotifierStub(harness.channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await notifier.ListSubscribers(notifier_pb2.ListSubscribersRequest())
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value

            cluster.restart(lost)
            rerun = await _rerun_once_the_lock_is_free(harness)
            assert rerun.state == differ_pb2.SUCCEEDED, rerun

            delivered = await harness.new_events()
            edited = {make_profile(i)["id"] for i in EDITED}
            updates = [e.user_id for e in delivered if e.kind == notifier_pb2.UPDATED]
            # Every change once (events of the broken run that got out are
            # not repeated), and nothing for users that did not change.
            assert sorted(updates) == sorted(edited)
            assert {e.user_id for e in delivered} == edited
    finally:
        await client.aclose()


async def _rerun_once_the_lock_is_free(harness: DifferHarness) -> Any:
    """The broken run could not release the shard lock; it expires (TTL)."""
    deadline = asyncio.get_running_loop().time() + 4 * harness.settings.lock_ttl_seconds
    while True:
        try:
            return await harness.runner.run_to_end(0, 1)
        except AlreadyRunning:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
