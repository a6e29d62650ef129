"""The baseline in Redis: the digest and last-read profile of every user of a
shard, as of the last committed run.

A run never edits the live baseline while it reads. It stages only what it
changes in a draft (a redo log) and commits in three steps, so committing
costs O(changes), never a copy of the shard:

1. the commit point: one transaction sets `committing` to the draft's name;
2. the draft's changes and deletions are applied to the live keys, in chunks
   (each chunk idempotent);
3. one transaction sets `current` to the draft's name and clears
   `committing`; the draft's keys are dropped.

A crash before step 1 leaves the previous baseline intact (the draft is an
orphan, dropped by the next run). A crash after it is finished by whoever
loads the baseline next (`Baseline.load`, always under the shard lock):
applying the same draft twice gives the same result. A shard with no
baseline yet has nothing to protect, so its first run writes the live keys
directly and commits by setting `current` alone.

Keys (per shard label, e.g. `s0of1`, in a hash tag so that every key of a
shard lives in one Redis Cluster slot):

    profilesync:baseline:{<shard>}:current        -> generation (the last committed run)
    profilesync:baseline:{<shard>}:committing     -> generation being applied (steps 1-3)
    profilesync:baseline:{<shard>}:confirmed      -> ISO time: the start of the last committed
                                                     run that read every user of the shard
    profilesync:baseline:{<shard>}:digests        hash user id -> digest
    profilesync:baseline:{<shard>}:profiles       hash user id -> profile JSON
    profilesync:baseline:{<shard>}:ids            set of the user ids (for SDIFF)
    profilesync:baseline:{<shard>}:upns           hash lower-case UPN -> user id (LOB reads)
    profilesync:held:{<shard>}                    a run held for deletes (held.py)

and, per draft <gen> (so the differ's own memory stays flat whatever the
tenant's size):

    ...:{<shard>}:draft:<gen>:open       the draft exists; at commit, the `confirmed` time it sets
    ...:{<shard>}:draft:<gen>:digests    hash: new digests of changed users
    ...:{<shard>}:draft:<gen>:profiles   hash: new profiles of changed users
    ...:{<shard>}:draft:<gen>:seen       set of user ids the run read (or failed to read)
    ...:{<shard>}:draft:<gen>:failed     sorted set of user ids that could not be read
    ...:{<shard>}:draft:<gen>:changed    sorted set of user ids created or updated
    ...:{<shard>}:draft:<gen>:deletes    sorted set of user ids that vanished
    ...:{<shard>}:draft:<gen>:lob        sorted set of user ids whose LOB-written digest was seen
    ...:{<shard>}:draft:<gen>:followups  hash user id -> the last event sent for a user changed
                                         twice in a run (a serialized ChangeEvent), written
                                         ahead of it: a rerun after a crash repeats it

Sorted sets (all scores 0) are read back with ZRANGE by index: exact and
free of the duplicates a SCAN may return.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from services.common.redis_client import as_bytes, as_text
from services.common.redis_keys import baseline_key
from services.snapshot_differ.crashpoints import crash_point

__all__ = ["SCRATCH_KINDS", "Baseline", "BaselineDraft", "held_key", "members"]

WRITE_CHUNK = 1000
LIVE_KINDS = ("digests", "profiles", "ids", "upns", "confirmed")
SCRATCH_KINDS = ("seen", "failed", "changed", "deletes", "lob", "noprofile")
DRAFT_KINDS = ("open", "digests", "profiles", "followups", *SCRATCH_KINDS)

Entry = tuple[str, str, dict[str, Any]]  # (user id, digest, profile)


def held_key(shard: str) -> str:
    """The held-run marker, in the shard's slot: it is cleared in the commit transaction."""
    return f"profilesync:held:{{{shard}}}"


async def members(redis: aioredis.Redis, key: str, chunk: int) -> AsyncIterator[list[str]]:
    """Members of a sorted set, `chunk` at a time, in order."""
    start = 0
    while True:
        values = await redis.zrange(key, start, start + chunk - 1)
        if not values:
            return
        yield [as_text(v) for v in values]
        start += chunk


def _dumps(profile: dict[str, Any]) -> str:
    return json.dumps(profile, ensure_ascii=False)


class Baseline:
    """The committed baseline of one shard (the live keys, named `generation`)."""

    def __init__(self, redis: aioredis.Redis, shard: str, generation: str | None) -> None:
        self.redis = redis
        self.shard = shard
        self.generation = generation

    @classmethod
    async def load(cls, redis: aioredis.Redis, shard: str) -> Baseline:
        """The shard's baseline, with a commit that a crash interrupted finished
        first. Call it holding the shard lock."""
        current, committing = await redis.mget(
            baseline_key(shard, "current"), baseline_key(shard, "committing")
        )
        base = cls(redis, shard, as_text(current) if current else None)
        if committing is not None:
            await BaselineDraft(base, as_text(committing)).finish_commit()
        return base

    @property
    def exists(self) -> bool:
        return self.generation is not None

    @property
    def pointer_key(self) -> str:
        return baseline_key(self.shard, "current")

    @property
    def committing_key(self) -> str:
        return baseline_key(self.shard, "committing")

    def key(self, kind: str) -> str:
        """A live key: one of LIVE_KINDS."""
        return baseline_key(self.shard, kind)

    def draft_key(self, generation: str, kind: str) -> str:
        return baseline_key(self.shard, f"draft:{generation}:{kind}")

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
        """Every user id, about `count` at a time (HSCAN; the live keys are not
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
        """A new draft on top of this baseline; nothing is copied. A shard with
        no baseline yet is written directly (see the module doc)."""
        draft = BaselineDraft(self, generation, dry_run=dry_run, direct=not self.exists)
        await draft.reset()
        if draft.direct and not dry_run:
            # Left by a first run that never committed.
            await self.redis.delete(*(self.key(kind) for kind in LIVE_KINDS))
        await self.redis.set(draft.key("open"), "1")
        return draft

    async def start_over(self) -> None:
        """Empties the live keys before they are filled again (a rebuild)."""
        async with self.redis.pipeline(transaction=True) as tx:
            tx.delete(self.pointer_key, self.committing_key)
            tx.delete(*(self.key(kind) for kind in LIVE_KINDS))
            await tx.execute()
        self.generation = None

    async def put_committed(self, entries: Iterable[Entry]) -> None:
        """Writes entries straight into the live keys (a rebuild, before `mark_committed`)."""
        items = list(entries)
        if not items:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            _write_entries(pipe, self, items)
            await pipe.execute()

    async def mark_committed(self, generation: str) -> None:
        await self.redis.set(self.pointer_key, generation)
        self.generation = generation

    async def orphan_generations(self) -> list[str]:
        """Drafts of runs that never committed, oldest first (run ids sort by start)."""
        start = len(self.draft_key("", "")) - 1  # "...:draft:" before the name
        names = set()
        async for key in self.redis.scan_iter(match=self.draft_key("*", "open"), count=1000):
            names.add(as_text(key)[start:].rsplit(":", 1)[0])
        return sorted(names)

    async def drop_orphans(self, keep: Collection[str] = ()) -> None:
        """Deletes the drafts of runs that never committed, except those in `keep`."""
        start = len(self.draft_key("", "")) - 1  # "...:draft:" before the name
        async for key in self.redis.scan_iter(match=self.draft_key("*", "*"), count=1000):
            name = as_text(key)
            if name[start:].rsplit(":", 1)[0] not in keep:
                await self.redis.delete(name)


def _upn_of(profile: dict[str, Any]) -> str:
    return str(profile.get("userPrincipalName") or "").lower()


def _write_entries(pipe: Any, base: Baseline, items: Sequence[Entry]) -> None:
    for start in range(0, len(items), WRITE_CHUNK):
        chunk = items[start : start + WRITE_CHUNK]
        pipe.hset(base.key("digests"), mapping={uid: d for uid, d, _ in chunk})
        pipe.hset(base.key("profiles"), mapping={uid: _dumps(p) for uid, _, p in chunk})
        pipe.sadd(base.key("ids"), *(uid for uid, _, _ in chunk))
        upns = {_upn_of(p): uid for uid, _, p in chunk if _upn_of(p)}
        if upns:
            pipe.hset(base.key("upns"), mapping={u: i for u, i in upns.items()})


class BaselineDraft:
    """The next baseline, as the changes a run makes to the committed one;
    invisible until `commit()`.

    `direct`: the shard had no baseline, so changes go straight to the live
    keys (nothing reads them as a baseline before `current` is set).
    """

    def __init__(
        self, base: Baseline, generation: str, *, dry_run: bool = False, direct: bool = False
    ) -> None:
        self.base = base
        self.redis = base.redis
        self.generation = generation
        self.dry_run = dry_run
        self.direct = direct

    def key(self, kind: str) -> str:
        return self.base.draft_key(self.generation, kind)

    async def exists(self) -> bool:
        return bool(await self.redis.exists(self.key("open")))

    async def reset(self) -> None:
        await self.redis.delete(*(self.key(kind) for kind in DRAFT_KINDS))

    async def put(self, entries: Iterable[Entry]) -> None:
        """Stages (user id, digest, profile) entries and notes them as changed."""
        items = list(entries)
        if not items or self.dry_run:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            if self.direct:
                _write_entries(pipe, self.base, items)
            else:
                for start in range(0, len(items), WRITE_CHUNK):
                    chunk = items[start : start + WRITE_CHUNK]
                    pipe.hset(self.key("digests"), mapping={uid: d for uid, d, _ in chunk})
                    pipe.hset(self.key("profiles"), mapping={uid: _dumps(p) for uid, _, p in chunk})
            for start in range(0, len(items), WRITE_CHUNK):
                chunk = items[start : start + WRITE_CHUNK]
                pipe.zadd(self.key("changed"), {uid: 0 for uid, _, _ in chunk})
            await pipe.execute()

    async def follow_up_events(self, user_ids: Sequence[str]) -> dict[str, bytes]:
        """The written-ahead follow-up events of these users, for those that have one."""
        if not user_ids:
            return {}
        values = await self.redis.hmget(self.key("followups"), list(user_ids))
        return {uid: as_bytes(v) for uid, v in zip(user_ids, values, strict=True) if v is not None}

    async def log_follow_ups(self, events: Mapping[str, Any]) -> None:
        """Writes events ahead (user id -> ChangeEvent): the one that brought
        a user to the state the draft holds, before a follow-up is sent."""
        if events and not self.dry_run:
            await self.redis.hset(
                self.key("followups"),
                mapping={uid: event.SerializeToString() for uid, event in events.items()},
            )

    async def put_follow_ups(self, entries: Sequence[Entry], events: Mapping[str, Any]) -> None:
        """Stages follow-up changes and writes their events ahead, in one
        transaction: a crash leaves both or neither."""
        if not entries or self.dry_run:
            return
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(self.key("digests"), mapping={uid: d for uid, d, _ in entries})
            tx.hset(self.key("profiles"), mapping={uid: _dumps(p) for uid, _, p in entries})
            tx.zadd(self.key("changed"), {uid: 0 for uid, _, _ in entries})
            tx.hset(
                self.key("followups"),
                mapping={uid: event.SerializeToString() for uid, event in events.items()},
            )
            await tx.execute()

    async def carry_follow_ups(self, generation: str) -> dict[str, bytes]:
        """Takes over the follow-ups of a draft whose run died (before this
        draft's first read): their events and the states they brought, staged
        here without being marked changed (only a read of the user does that).
        Returns user id -> serialized event, to be sent again."""
        orphan = BaselineDraft(self.base, generation)
        raw = await self.redis.hgetall(orphan.key("followups"))
        events = {as_text(uid): as_bytes(v) for uid, v in raw.items()}
        if not events or self.dry_run:
            return events
        uids = list(events)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(orphan.key("digests"), uids)
            pipe.hmget(orphan.key("profiles"), uids)
            digests, profiles = await pipe.execute()
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(self.key("followups"), mapping=dict[Any, Any](events))
            held = {
                uid: (d, p)
                for uid, d, p in zip(uids, digests, profiles, strict=True)
                if d is not None and p is not None
            }
            if held:
                tx.hset(self.key("digests"), mapping={uid: d for uid, (d, _) in held.items()})
                tx.hset(self.key("profiles"), mapping={uid: p for uid, (_, p) in held.items()})
            await tx.execute()
        return events

    async def note(self, kind: str, user_ids: Sequence[str]) -> None:
        """Adds user ids to one of the sorted-set scratch keys."""
        if user_ids:
            await self.redis.zadd(self.key(kind), dict.fromkeys(user_ids, 0))

    async def count(self, kind: str) -> int:
        return int(await self.redis.zcard(self.key(kind)))

    async def note_no_profile(self, user_id: str, reason: str) -> None:
        """Notes a user listed without a SharePoint profile, and Graph's why (a hash)."""
        await self.redis.hset(self.key("noprofile"), user_id, reason)

    async def no_profile_reasons(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Why each of these users has no profile, for those noted without one."""
        if not user_ids:
            return {}
        values = await self.redis.hmget(self.key("noprofile"), list(user_ids))
        return {uid: as_text(v) for uid, v in zip(user_ids, values, strict=True) if v is not None}

    def members(self, kind: str, chunk: int = 1000) -> AsyncIterator[list[str]]:
        return members(self.redis, self.key(kind), chunk)

    async def profiles(self, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The new content of changed users, as this draft will commit it."""
        if not user_ids:
            return {}
        if self.direct:
            return await Baseline(self.redis, self.base.shard, self.generation).profiles(user_ids)
        values = await self.redis.hmget(self.key("profiles"), list(user_ids))
        return {
            uid: json.loads(v) for uid, v in zip(user_ids, values, strict=True) if v is not None
        }

    async def commit(self, confirmed: str = "") -> None:
        """Makes this draft the baseline (see the module doc), clearing the
        shard's held-run marker in the same transaction as the commit point.

        `confirmed` (an ISO time), for a run that read every user of the
        shard: Graph confirmed every profile at or after it.
        """
        if self.dry_run:
            raise RuntimeError("a dry run's draft is never committed")
        base = self.base
        async with self.redis.pipeline(transaction=True) as tx:
            if self.direct:
                tx.set(base.pointer_key, self.generation)
                if confirmed:
                    tx.set(base.key("confirmed"), confirmed)
            else:
                tx.set(self.key("open"), confirmed)
                tx.set(base.committing_key, self.generation)
            tx.delete(held_key(base.shard))
            await tx.execute()
        crash_point("switched")
        if self.direct:
            base.generation = self.generation
        else:
            await self._apply()

    async def finish_commit(self) -> None:
        """Steps 2 and 3 of a commit a crash interrupted, then the draft dropped."""
        await self._apply()
        await self.drop()

    async def _apply(self) -> None:
        """Steps 2 and 3 of a commit; safe to repeat after a crash."""
        base = self.base
        # Deletions first: a UPN that a deleted user freed may be a new user's.
        async for chunk in self.members("deletes", WRITE_CHUNK):
            gone = await self.redis.hmget(base.key("profiles"), chunk)
            upns = [_upn_of(json.loads(p)) for p in gone if p is not None]
            async with self.redis.pipeline(transaction=True) as tx:
                tx.hdel(base.key("digests"), *chunk)
                tx.hdel(base.key("profiles"), *chunk)
                tx.srem(base.key("ids"), *chunk)
                if any(upns):
                    tx.hdel(base.key("upns"), *(upn for upn in upns if upn))
                await tx.execute()
        async for chunk in self.members("changed", WRITE_CHUNK):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self.key("digests"), chunk)
                pipe.hmget(self.key("profiles"), chunk)
                digests, profiles = await pipe.execute()
            async with self.redis.pipeline(transaction=True) as tx:
                staged = [
                    (uid, d, p)
                    for uid, d, p in zip(chunk, digests, profiles, strict=True)
                    if d is not None and p is not None
                ]
                if staged:
                    tx.hset(base.key("digests"), mapping={uid: d for uid, d, _ in staged})
                    tx.hset(base.key("profiles"), mapping={uid: p for uid, _, p in staged})
                    tx.sadd(base.key("ids"), *(uid for uid, _, _ in staged))
                    named = {_upn_of(json.loads(p)): uid for uid, _, p in staged}
                    named.pop("", None)
                    if named:
                        tx.hset(base.key("upns"), mapping={u: i for u, i in named.items()})
                    await tx.execute()
            crash_point("applied")
        confirmed = await self.redis.get(self.key("open"))
        async with self.redis.pipeline(transaction=True) as tx:
            tx.set(base.pointer_key, self.generation)
            if confirmed:
                tx.set(base.key("confirmed"), confirmed)
            tx.delete(base.committing_key)
            await tx.execute()
        base.generation = self.generation

    async def drop(self) -> None:
        """Deletes the whole draft (after its commit, or a dry run at its end)."""
        await self.reset()
