"""The tenant's Graph quota, by its size, when GRAPH_QUOTA_PER_10S is not set.

Graph's identity-and-access limit per app per tenant depends on how many
users the tenant has: 3,500 resource units per 10 s under 50 users, 5,000 from
50 to 500, 8,000 above ("Microsoft Graph service-specific throttling limits",
https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits).

    quota = TenantQuota(redis, key, budget, share=0.97, explicit=None)
    await quota.refresh()                  # what another replica or run learnt
    await quota.learn(1_200, complete=False)   # a listing has passed 1,200 users

The size is learnt from enumerating the users (every sync lists them all) and
kept in Redis, so every replica and the next run start from it. A listing
still under way gives a lower bound, which may only raise the tier; a
complete listing gives the size, which may lower it too. Until anything is
known the smallest tier applies, the one no tenant exceeds. An explicit
GRAPH_QUOTA_PER_10S always wins.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis

from services.profile_extender.rate_budget import RateBudget

__all__ = ["TenantQuota", "quota_for_users"]

log = logging.getLogger(__name__)

SMALL_QUOTA = 3_500  # under 50 users
MEDIUM_QUOTA = 5_000  # 50 to 500 users
LARGE_QUOTA = 8_000  # over 500 users
# How often a replica looks for a size learnt elsewhere.
REFRESH_SECONDS = 30.0


def quota_for_users(users: int) -> int:
    """Graph's resource units per 10 s for a tenant of `users` users."""
    if users < 50:
        return SMALL_QUOTA
    if users <= 500:
        return MEDIUM_QUOTA
    return LARGE_QUOTA


class TenantQuota:
    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        budget: RateBudget,
        *,
        share: float,
        explicit: int | None,
    ) -> None:
        self._redis = redis
        self._key = key
        self._budget = budget
        self._share = share
        self.explicit = explicit
        self.users: int | None = None
        self.quota_per_10s = explicit or SMALL_QUOTA
        self._next_refresh = 0.0
        budget.set_budget(self.budget_per_10s)

    @property
    def budget_per_10s(self) -> int:
        return max(1, int(self.quota_per_10s * self._share))

    async def refresh(self) -> None:
        """Picks up a tenant size learnt by another replica or an earlier run
        (asks Redis at most every REFRESH_SECONDS)."""
        if self.explicit is not None or time.monotonic() < self._next_refresh:
            return
        self._next_refresh = time.monotonic() + REFRESH_SECONDS
        try:
            stored = await self._redis.get(self._key)
        except aioredis.RedisError as error:
            log.warning("cannot read the tenant's size from Redis (%s)", error)
            return
        if stored is not None:
            self._apply(int(stored))

    async def learn(self, users: int, *, complete: bool) -> None:
        """A listing has seen `users` users (all of them when `complete`)."""
        if self.explicit is not None:
            return
        if not complete and self.users is not None and users <= self.users:
            return
        if not complete and quota_for_users(users) == self.quota_per_10s:
            return  # nothing new to tell other replicas before the listing ends
        try:
            if complete:
                await self._redis.set(self._key, users)
            else:
                # Another replica may know more: a partial count only raises it.
                stored = await self._redis.get(self._key)
                if stored is None or int(stored) < users:
                    await self._redis.set(self._key, users)
        except aioredis.RedisError as error:
            log.warning("cannot store the tenant's size in Redis (%s)", error)
        self._apply(users, exact=complete)

    def _apply(self, users: int, *, exact: bool = True) -> None:
        self.users = users
        quota = quota_for_users(users)
        if quota == self.quota_per_10s:
            return
        log.info(
            "the tenant has %s%d users: Graph quota %d resource units per 10 s "
            "(GRAPH_QUOTA_PER_10S is not set)",
            "" if exact else "at least ",
            users,
            quota,
            extra={"tenantUsers": users, "quotaPer10s": quota},
        )
        self.quota_per_10s = quota
        self._budget.set_budget(self.budget_per_10s)
