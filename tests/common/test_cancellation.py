"""A loop stopped by cancelling its task stops, even when the Redis client
loses the cancellation (redis/redis-py#2028, #2551): a sync run's lock
renewer or a sweep's re-read cycle must not outlive the run, or the run's end
and the process's shutdown wait forever."""

from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from services.common.cancellation import stop_if_cancelled

TRIALS = 300


async def _cancel_at_random(redis: aioredis.Redis, *, checked: bool) -> int:
    """Cancels a loop of Redis reads at random moments; returns how many loops
    were still running a second after being cancelled."""

    async def read_forever() -> None:
        while True:
            await redis.hkeys("profiles")
            if checked:
                stop_if_cancelled()

    rng = random.Random(7)
    running = 0
    for _ in range(TRIALS):
        task = asyncio.create_task(read_forever())
        await asyncio.sleep(rng.random() * 0.005)
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        if not task.done():
            running += 1
            task.cancel()  # and again until it takes
            while not task.done():
                await asyncio.wait({task}, timeout=0.01)
                task.cancel()
    return running


async def test_a_loop_that_checks_stops_on_the_first_cancellation(
    redis_client: aioredis.Redis,
) -> None:
    await redis_client.hset("profiles", mapping={str(i): "x" * 64 for i in range(2_000)})
    assert await _cancel_at_random(redis_client, checked=True) == 0
