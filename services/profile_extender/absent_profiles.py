"""Users Graph said have no SharePoint profile, remembered so that a sync does
not spend a read on each of them every run.

    absent = AbsentProfiles(redis, recheck_seconds=86_400)
    known = await absent.known(["id1", "id2"])     # {"id1": (reason, checked)} not due yet
    await absent.remember(results)                  # after reading the others

One key per user (`profilesync:noprofile:<id>`, JSON reason and time) with a
time to live of PROFILE_RECHECK_HOURS: while it lives, the user is reported
without a profile from memory; once it expires the next sync reads the user
again (at most one read per user per re-check cycle), and a user removed from
the directory leaves nothing behind. Single-key commands only, so the same
code runs on a Redis Cluster.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis

from services.profile_extender.graph_client import FetchResult

__all__ = ["NO_PROFILE_PREFIX", "AbsentProfiles"]

log = logging.getLogger(__name__)

NO_PROFILE_PREFIX: Final = "profilesync:noprofile:"


class AbsentProfiles:
    def __init__(self, redis: aioredis.Redis, recheck_seconds: int) -> None:
        self._redis = redis
        self._ttl = recheck_seconds

    async def known(self, user_ids: Sequence[str]) -> dict[str, tuple[str, dt.datetime]]:
        """The users among `user_ids` still known to have no profile: id -> (why, when)."""
        if self._ttl <= 0 or not user_ids:
            return {}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    pipe.get(NO_PROFILE_PREFIX + user_id)
                values = await pipe.execute()
        except aioredis.RedisError as error:
            # A read too many costs quota, not data: read them all.
            log.warning("could not look up users without a profile: %s", error)
            return {}
        known: dict[str, tuple[str, dt.datetime]] = {}
        for user_id, raw in zip(user_ids, values, strict=True):
            if raw is None:
                continue
            try:
                entry = json.loads(raw)
                known[user_id] = (
                    str(entry["reason"]),
                    dt.datetime.fromisoformat(str(entry["checkedAt"])),
                )
            except (ValueError, KeyError, TypeError):
                continue  # unreadable: read the user again
        return known

    async def remember(self, results: Sequence[FetchResult]) -> None:
        """Notes who has no profile (until the re-check), and forgets who has one."""
        if self._ttl <= 0:
            return
        now = dt.datetime.now(dt.UTC).isoformat()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for result in results:
                    key = NO_PROFILE_PREFIX + result.user_id
                    if result.no_profile is not None:
                        entry = json.dumps({"reason": result.no_profile, "checkedAt": now})
                        pipe.set(key, entry, ex=self._ttl)
                    elif result.user is not None:
                        pipe.delete(key)
                await pipe.execute()
        except aioredis.RedisError as error:
            log.warning("could not remember users without a profile: %s", error)
