"""Run records keep one hash slot (so saving one stays a transaction on a
Redis Cluster), and records an earlier release wrote under the old key names
stay readable and are closed like any other."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.cluster import key_slot

from profilesync.v1 import differ_pb2
from services.snapshot_differ.run_records import (
    INDEX_KEY,
    INTERRUPTED,
    LEGACY_OPEN_PREFIX,
    LEGACY_RECORD_PREFIX,
    OPEN_PREFIX,
    RECORD_PREFIX,
    RunRecords,
)


def _run(run_id: str, state: int, started_ms: int) -> differ_pb2.SyncRun:
    run = differ_pb2.SyncRun(run_id=run_id, state=state, shard_index=0, shard_count=1)  # type: ignore[arg-type]
    run.start_time.FromMilliseconds(started_ms)
    return run


def test_every_run_record_key_is_in_the_slot_of_the_index() -> None:
    slot = key_slot(INDEX_KEY.encode())
    assert key_slot(f"{RECORD_PREFIX}20261206T000000000Z-0a1b2c3d".encode()) == slot
    assert key_slot(f"{OPEN_PREFIX}s3of8".encode()) == slot


async def test_records_of_the_old_layout_are_read_and_closed(
    redis_client: aioredis.Redis,
) -> None:
    records = RunRecords(redis_client)
    old = _run("20261205T000000000Z-01d01d01", differ_pb2.RUNNING, 1_000)
    await redis_client.set(LEGACY_RECORD_PREFIX + old.run_id, old.SerializeToString())
    await redis_client.zadd(INDEX_KEY, {old.run_id: 1_000})
    await redis_client.sadd(LEGACY_OPEN_PREFIX + "s0of1", old.run_id)
    new = _run("20261206T000000000Z-0e40e40e", differ_pb2.SUCCEEDED, 2_000)
    await records.save(new)

    found = await records.find(old.run_id)
    assert found is not None and found.run_id == old.run_id
    assert [r.run_id for r in await records.newest(10)] == [new.run_id, old.run_id]

    # The next run of the shard closes the old record as interrupted.
    await records.close_stale("s0of1", "20261206T010000000Z-0c0c0c0c", supersede_held=True)
    closed = await records.get(old.run_id)
    assert closed.state == differ_pb2.FAILED
    assert closed.error == INTERRUPTED
    assert not await redis_client.exists(LEGACY_OPEN_PREFIX + "s0of1")
    assert not await redis_client.sismember(OPEN_PREFIX + "s0of1", old.run_id)
