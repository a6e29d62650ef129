"""The baseline in Redis: the digest and last-read profile of every user of a
shard, as of the last committed run.

A run never edits the live baseline. It copies it (server-side COPY), applies
its changes to the copy, and commits by switching one pointer in a MULTI
transaction, so a crash at any point leaves the previous baseline intact and
readers never see half a commit.

Keys (per shard label, e.g. `s0of1`):

    profilesync:baseline:<shard>:current            -> generation name
    profilesync:baseline:<shard>:<gen>:digests      hash user id -> digest
    profilesync:baseline:<shard>:<gen>:profiles     hash user id -> profile JSON
    profilesync:baseline:<shard>:<gen>:ids          set of the user ids (for SDIFF)

and, while a run builds generation <gen>, its scratch keys (so the differ's
own memory stays flat whatever the tenant's size):

    ...:<gen>:seen       set of user ids the run read (or failed to read)
    ...:<gen>:failed     sorted set of user ids that could not be read
    ...:<gen>:changed    sorted set of user ids created or updated
    ...:<gen>:deletes    sorted set of user ids that vanished
    ...:<gen>:lob        sorted set of user ids whose LOB-written digest was seen

Sorted sets (all scores 0) are read back with ZRANGE by index: exact and
free of the duplicates a SCAN may return.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis

from services.common.redis_client import as_text

__all__ = ["HELD_KEY_PREFIX", "SCRATCH_KINDS", "Baseline", "BaselineDraft", "members"]

KEY_PREFIX = "profilesync:baseline"
HELD_KEY_PREFIX = "profilesync:held"
WRITE_CHUNK = 1000
DATA_KINDS = ("digests", "profiles", "ids")
SCRATCH_KINDS = ("seen", "failed", "changed", "deletes", "lob")


async def members(redis: aioredis.Redis, key: str, chunk: int) -> AsyncIterator[list[str]]:
    """Members of a sorted set, `chunk` at a time, in order."""
    start = 0
    while True:
        values = await redis.zrange(key, start, start + chunk - 1)
        if not values:
            return
        yield [as_text(v) for v in values]
        start += chunk


class Baseline:
    """The committed baseline of one shard (a read-only view of one generation)."""

    def __init__(self, redis: aioredis.Redis, shard: str, generation: str | None) -> None:
        self.redis = redis
        self.shard = shard
        self.generation = generation

    @classmethod
    async def load(cls, redis: aioredis.Redis, shard: str) -> Baseline:
        generation = await redis.get(f"{KEY_PREFIX}:{shard}:current")
        return cls(redis, shard, as_text(generation) if generation else None)

    @property
    def exists(self) -> bool:
        return self.generation is not None

    @property
    def pointer_key(self) -> str:
        return f"{KEY_PREFIX}:{self.shard}:current"

    def key(self, kind: str, generation: str | None = None) -> str:
        return f"{KEY_PREFIX}:{self.shard}:{generation or self.generation}:{kind}"

    async def digests(self, user_ids: Sequence[str]) -> list[str | None]:
        """Baseline digests of these users, one round trip."""
        if not self.exists or not user_ids:
            return [None] * len(user_ids)
        values = await self.redis.hmget(self.key("digests"), list(user_ids))
        return [as_text(v) if v is not None else None for v in values]

    async def profiles(self, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not self.exists or not user_ids:
            return {}
        values = await self.redis.hmget(self.key("profiles"), list(user_ids))
        return {
            uid: json.loads(v) for uid, v in zip(user_ids, values, strict=True) if v is not None
        }

    async def user_id_chunks(self, count: int = 1000) -> AsyncIterator[list[str]]:
        """Every user id, about `count` at a time (HSCAN; the hash is not
        written during a run, so no id is returned twice)."""
        if not self.exists:
            return
        cursor = 0
        while True:
            # HSCAN NOVALUES needs Redis 7.4; digests are small, so take both.
            cursor, data = await self.redis.hscan(self.key("digests"), cursor, count=count)
            if data:
                yield [as_text(user_id) for user_id in data]
            if cursor == 0:
                return

    async def size(self) -> int:
        return int(await self.redis.hlen(self.key("digests"))) if self.exists else 0

    async def draft(self, generation: str, *, dry_run: bool = False) -> BaselineDraft:
        """A writable copy of this baseline under a new generation name. A dry
        run's draft keeps only scratch keys: it copies and writes no profile."""
        draft = BaselineDraft(self, generation, dry_run=dry_run)
        await draft.reset()
        if self.exists and not dry_run:
            for kind in DATA_KINDS:
                await self.redis.copy(self.key(kind), draft.key(kind), replace=True)
        return draft

    async def drop_orphans(self, keep: Collection[str] = ()) -> None:
        """Deletes generations left by runs that never committed (except those
        in `keep`), and scratch keys a committed run left behind."""
        live = {self.generation, *keep}
        async for key in self.redis.scan_iter(match=f"{KEY_PREFIX}:{self.shard}:*:*", count=1000):
            name = as_text(key)
            generation, kind = name.split(":")[3:5]
            if generation not in live or (generation == self.generation and kind in SCRATCH_KINDS):
                await self.redis.delete(name)


class BaselineDraft:
    """The next baseline, being built by a run; invisible until `commit()`."""

    def __init__(self, base: Baseline, generation: str, *, dry_run: bool = False) -> None:
        self.base = base
        self.redis = base.redis
        self.generation = generation
        self.dry_run = dry_run

    def key(self, kind: str) -> str:
        return self.base.key(kind, self.generation)

    async def reset(self) -> None:
        await self.redis.delete(*(self.key(kind) for kind in (*DATA_KINDS, *SCRATCH_KINDS)))

    async def put(self, entries: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Sets (user id, digest, profile) entries and notes them as changed."""
        items = list(entries)
        if not items or self.dry_run:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(items), WRITE_CHUNK):
                chunk = items[start : start + WRITE_CHUNK]
                pipe.hset(self.key("digests"), mapping={uid: d for uid, d, _ in chunk})
                pipe.hset(
                    self.key("profiles"),
                    mapping={uid: json.dumps(p, ensure_ascii=False) for uid, _, p in chunk},
                )
                pipe.sadd(self.key("ids"), *(uid for uid, _, _ in chunk))
                pipe.zadd(self.key("changed"), {uid: 0 for uid, _, _ in chunk})
            await pipe.execute()

    async def put_unchanged(self, entries: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Sets entries without noting them as changed (a rebuild)."""
        items = list(entries)
        if not items or self.dry_run:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key("digests"), mapping={uid: d for uid, d, _ in items})
            pipe.hset(
                self.key("profiles"),
                mapping={uid: json.dumps(p, ensure_ascii=False) for uid, _, p in items},
            )
            pipe.sadd(self.key("ids"), *(uid for uid, _, _ in items))
            await pipe.execute()

    async def remove(self, user_ids: Sequence[str]) -> None:
        if not user_ids or self.dry_run:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(user_ids), WRITE_CHUNK):
                chunk = list(user_ids[start : start + WRITE_CHUNK])
                pipe.hdel(self.key("digests"), *chunk)
                pipe.hdel(self.key("profiles"), *chunk)
                pipe.srem(self.key("ids"), *chunk)
            await pipe.execute()

    async def note(self, kind: str, user_ids: Sequence[str]) -> None:
        """Adds user ids to one of the sorted-set scratch keys."""
        if user_ids:
            await self.redis.zadd(self.key(kind), dict.fromkeys(user_ids, 0))

    async def count(self, kind: str) -> int:
        return int(await self.redis.zcard(self.key(kind)))

    def members(self, kind: str, chunk: int = 1000) -> AsyncIterator[list[str]]:
        return members(self.redis, self.key(kind), chunk)

    async def switch(self) -> None:
        """The commit point: makes this draft the baseline, drops the previous
        generation and any held-run marker of the shard, in one transaction."""
        if self.dry_run:
            raise RuntimeError("a dry run's draft is never committed")
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(self.base.pointer_key, self.generation)
            tx.delete(f"{HELD_KEY_PREFIX}:{self.base.shard}")
            if self.base.exists and self.base.generation != self.generation:
                tx.delete(*(self.base.key(kind) for kind in (*DATA_KINDS, *SCRATCH_KINDS)))
            await tx.execute()
        self.base.generation = self.generation

    async def drop_scratch(self) -> None:
        await self.redis.delete(*(self.key(kind) for kind in SCRATCH_KINDS))

    async def discard(self) -> None:
        """Deletes the whole draft (a dry run at its end)."""
        await self.reset()
