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
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis

__all__ = ["Baseline", "BaselineDraft"]

KEY_PREFIX = "profilesync:baseline"
WRITE_CHUNK = 1000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Baseline:
    """The committed baseline of one shard (read-only view of one generation)."""

    def __init__(self, redis: aioredis.Redis, shard: str, generation: str | None) -> None:
        self.redis = redis
        self.shard = shard
        self.generation = generation

    @classmethod
    async def load(cls, redis: aioredis.Redis, shard: str) -> Baseline:
        generation = await redis.get(f"{KEY_PREFIX}:{shard}:current")
        return cls(redis, shard, _text(generation) if generation else None)

    @property
    def exists(self) -> bool:
        return self.generation is not None

    def _key(self, kind: str, generation: str | None = None) -> str:
        return f"{KEY_PREFIX}:{self.shard}:{generation or self.generation}:{kind}"

    async def digests(self, user_ids: Sequence[str]) -> list[str | None]:
        """Baseline digests of these users, one round trip."""
        if not self.exists or not user_ids:
            return [None] * len(user_ids)
        values = await self.redis.hmget(self._key("digests"), list(user_ids))
        return [_text(v) if v is not None else None for v in values]

    async def profiles(self, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not self.exists or not user_ids:
            return {}
        values = await self.redis.hmget(self._key("profiles"), list(user_ids))
        return {
            uid: json.loads(v) for uid, v in zip(user_ids, values, strict=True) if v is not None
        }

    async def user_ids(self) -> AsyncIterator[str]:
        if not self.exists:
            return
        # HSCAN NOVALUES needs Redis 7.4; digests are small, so take both.
        async for user_id, _ in self.redis.hscan_iter(self._key("digests"), count=5000):
            yield _text(user_id)

    async def size(self) -> int:
        return int(await self.redis.hlen(self._key("digests"))) if self.exists else 0

    async def draft(self, generation: str) -> BaselineDraft:
        """A writable copy of this baseline under a new generation name."""
        draft = BaselineDraft(self, generation)
        await draft.reset()
        if self.exists:
            for kind in ("digests", "profiles"):
                await self.redis.copy(self._key(kind), draft.key(kind), replace=True)
        return draft

    async def drop_orphans(self) -> None:
        """Deletes generations left by runs that never committed."""
        keep = self.generation
        async for key in self.redis.scan_iter(match=f"{KEY_PREFIX}:{self.shard}:*:*", count=1000):
            generation = _text(key).split(":")[3]
            if generation != keep:
                await self.redis.delete(key)


class BaselineDraft:
    """The next baseline, being built by a run; invisible until `commit()`."""

    def __init__(self, base: Baseline, generation: str) -> None:
        self.base = base
        self.generation = generation

    def key(self, kind: str) -> str:
        return self.base._key(kind, self.generation)

    async def reset(self) -> None:
        await self.base.redis.delete(self.key("digests"), self.key("profiles"))

    async def put(self, entries: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Sets (user id, digest, profile) entries, pipelined in chunks."""
        items = list(entries)
        async with self.base.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(items), WRITE_CHUNK):
                chunk = items[start : start + WRITE_CHUNK]
                pipe.hset(self.key("digests"), mapping={uid: d for uid, d, _ in chunk})
                pipe.hset(
                    self.key("profiles"),
                    mapping={uid: json.dumps(p, ensure_ascii=False) for uid, _, p in chunk},
                )
            await pipe.execute()

    async def remove(self, user_ids: Sequence[str]) -> None:
        async with self.base.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(user_ids), WRITE_CHUNK):
                chunk = list(user_ids[start : start + WRITE_CHUNK])
                pipe.hdel(self.key("digests"), *chunk)
                pipe.hdel(self.key("profiles"), *chunk)
            await pipe.execute()

    async def commit(self) -> None:
        """Makes this draft the baseline and drops the previous generation, atomically."""
        redis = self.base.redis
        async with redis.pipeline(transaction=True) as tx:
            tx.set(f"{KEY_PREFIX}:{self.base.shard}:current", self.generation)
            if self.base.exists:
                tx.delete(self.base._key("digests"), self.base._key("profiles"))
            await tx.execute()
        self.base.generation = self.generation
