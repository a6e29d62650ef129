"""LOB reads from the store the syncs keep: no Graph call, no quota spent.

    store = StoredProfiles(redis, shard_count=1)
    found = await store.get(["<object id>", "adele@contoso.com"])   # requested id -> Profile
    await store.remember_lob_edit(profile)      # after Graph accepted a LOB edit
    await store.remember_read_through(profile)  # read from Graph for want of a stored one

Where a profile comes from, newest first:

1. the LOB app's own edit, as Graph answered right after accepting it, while
   no committed sync has read the user since (`LOB_EDITS_KEY`);
2. the committed baseline of the user's shard (services/snapshot_differ/baseline.py):
   `syncedAt` is the later of the content's first read and the start of the
   last sync that read the whole shard;
3. a profile read from Graph for an earlier LOB read because no sync had
   stored it yet, kept for READ_THROUGH_SECONDS.

A user principal name is looked up in each shard's UPN map; a stale entry (the
user was renamed) is ignored, so the caller reads Graph instead.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as aioredis

from profilesync.v1 import profile_pb2
from services.common.profile_messages import profile_from_dict, profile_to_dict
from services.common.profiles import shard_of
from services.common.redis_client import as_text
from services.common.redis_keys import (
    LOB_EDITS_KEY,
    READ_THROUGH_PREFIX,
    baseline_key,
    shard_label,
)

__all__ = ["READ_THROUGH_SECONDS", "StoredProfiles"]

# How long a profile read from Graph for want of a stored one is served
# again: long enough for the next sync to store it.
READ_THROUGH_SECONDS: Final = 3600


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _message(profile: dict[str, Any], synced: dt.datetime | None) -> profile_pb2.Profile:
    message = profile_from_dict(profile)
    if synced is not None:
        message.synced_at.FromDatetime(synced)
    return message


class StoredProfiles:
    def __init__(self, redis: aioredis.Redis, *, shard_count: int) -> None:
        self._redis = redis
        self._shards = [shard_label(i, shard_count) for i in range(shard_count)]
        self._shard_count = shard_count

    def _shard(self, user_id: str) -> str:
        return self._shards[shard_of(user_id, self._shard_count)]

    async def get(self, ids: Sequence[str]) -> dict[str, profile_pb2.Profile]:
        """The stored profile of each requested id (object id or UPN) that has one."""
        if not ids:
            return {}
        resolved = await self._resolve(ids)
        user_ids = sorted(set(resolved.values()))
        if not user_ids:
            return {}
        shards = sorted({self._shard(uid) for uid in user_ids})
        async with self._redis.pipeline(transaction=False) as pipe:
            for uid in user_ids:
                pipe.hget(baseline_key(self._shard(uid), "profiles"), uid)
            pipe.hmget(LOB_EDITS_KEY, user_ids)
            for uid in user_ids:
                pipe.get(READ_THROUGH_PREFIX + uid)
            for shard in shards:
                pipe.get(baseline_key(shard, "confirmed"))
            replies = await pipe.execute()
        count = len(user_ids)
        stored = dict(zip(user_ids, replies[:count], strict=True))
        edits = dict(zip(user_ids, replies[count], strict=True))
        read_through = dict(zip(user_ids, replies[count + 1 : 2 * count + 1], strict=True))
        confirmed = {
            shard: _time(as_text(value)) if value else None
            for shard, value in zip(shards, replies[2 * count + 1 :], strict=True)
        }
        profiles: dict[str, profile_pb2.Profile] = {}
        for uid in user_ids:
            profile = self._newest(
                stored[uid], edits[uid], read_through[uid], confirmed[self._shard(uid)]
            )
            if profile is not None:
                profiles[uid] = profile
        found: dict[str, profile_pb2.Profile] = {}
        for requested, uid in resolved.items():
            profile = profiles.get(uid)
            if profile is None:
                continue
            if "@" in requested and profile.user_principal_name.lower() != requested.lower():
                continue  # a stale UPN entry: the user was renamed
            found[requested] = profile
        return found

    async def _resolve(self, ids: Sequence[str]) -> dict[str, str]:
        """Requested id -> object id; UPNs through the shards' UPN maps."""
        resolved = {requested: requested for requested in ids if "@" not in requested}
        upns = sorted({requested.lower() for requested in ids if "@" in requested})
        if upns:
            async with self._redis.pipeline(transaction=False) as pipe:
                for shard in self._shards:
                    pipe.hmget(baseline_key(shard, "upns"), upns)
                replies = await pipe.execute()
            owners: dict[str, str] = {}
            for reply in replies:
                for upn, uid in zip(upns, reply, strict=True):
                    if uid is not None:
                        owners.setdefault(upn, as_text(uid))
            for requested in ids:
                if "@" in requested and requested.lower() in owners:
                    resolved[requested] = owners[requested.lower()]
        return resolved

    @staticmethod
    def _newest(
        stored: Any, edit: Any, read_through: Any, confirmed: dt.datetime | None
    ) -> profile_pb2.Profile | None:
        candidates: list[tuple[dt.datetime, dict[str, Any]]] = []
        if stored is not None:
            profile = json.loads(stored)
            fetched = _time(profile.get("fetchTime"))
            times = [t for t in (fetched, confirmed) if t is not None]
            oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
            candidates.append((max(times) if times else oldest, profile))
        for raw in (edit, read_through):
            if raw is not None:
                document = json.loads(raw)
                written = _time(document.get("syncedAt"))
                if written is not None:
                    candidates.append((written, document["profile"]))
        if not candidates:
            return None
        synced, profile = max(candidates, key=lambda candidate: candidate[0])
        return _message(profile, synced)

    async def remember_lob_edit(self, profile: profile_pb2.Profile) -> None:
        """Serves a LOB edit Graph accepted until a sync has read the user again."""
        await self._redis.hset(LOB_EDITS_KEY, profile.id, self._document(profile))

    async def remember_read_through(self, profile: profile_pb2.Profile) -> None:
        await self._redis.set(
            READ_THROUGH_PREFIX + profile.id, self._document(profile), ex=READ_THROUGH_SECONDS
        )

    @staticmethod
    def _document(profile: profile_pb2.Profile) -> str:
        synced = profile.fetch_time.ToJsonString() if profile.HasField("fetch_time") else ""
        stored = profile_to_dict(profile)
        stored.pop("syncedAt", None)
        return json.dumps({"profile": stored, "syncedAt": synced}, ensure_ascii=False)
