"""`python -m services.profile_extender`: serve the ProfileExtender gRPC API."""

from __future__ import annotations

import asyncio
import sys

from services.common.entra import MsalTokens
from services.common.logs import configure_logging
from services.common.redis_client import connect
from services.common.server import run_service
from services.common.settings import settings_or_exit
from services.profile_extender.absent_profiles import AbsentProfiles
from services.profile_extender.graph_client import GraphClient
from services.profile_extender.quota_tier import TenantQuota
from services.profile_extender.rate_budget import RateBudget
from services.profile_extender.servicer import ProfileExtenderServicer, binding
from services.profile_extender.settings import ExtenderSettings
from services.profile_extender.stored_profiles import StoredProfiles
from services.profile_extender.updates import ProfileUpdater
from services.profile_extender.write_budget import WriteBudget, write_budget_key
from services.search.index import SearchIndex


async def serve(settings: ExtenderSettings) -> None:
    tokens = MsalTokens(settings.entra)
    # REDIS_CLUSTER is read here, where the client is made: a bad value exits
    # like any other setting.
    redis = settings_or_exit(
        lambda: connect(settings.redis_url), "profile_extender: configuration error"
    )
    # Graph's quotas are per app per tenant: so are the budgets, for all replicas.
    app = f"{settings.entra.tenant_id}:{settings.entra.client_id}"
    budget = RateBudget(redis, f"profilesync:graph-budget:{app}", budget_per_10s=1)
    quota = TenantQuota(
        redis,
        f"profilesync:graph-tenant-users:{settings.entra.tenant_id}",
        budget,
        share=settings.graph.budget_share,
        explicit=settings.graph.quota_per_10s,
    )
    await quota.refresh()
    writes = WriteBudget(
        redis,
        write_budget_key(settings.entra.tenant_id, settings.entra.client_id),
        writes_per_window=settings.graph.write_budget_per_150s,
    )
    graph = GraphClient(settings.graph, tokens, budget=budget, quota=quota)
    servicer = ProfileExtenderServicer(
        graph,
        ProfileUpdater(graph, tokens, redis, writes),
        SearchIndex(redis),
        StoredProfiles(redis, shard_count=settings.shard_count),
        AbsentProfiles(redis, recheck_seconds=settings.profile_recheck_hours * 3600),
    )

    async def close() -> None:
        await graph.aclose()
        await redis.aclose()

    await run_service(
        "profile_extender",
        settings,
        [binding(servicer)],
        on_stop=close,
    )


def main() -> int:
    settings = settings_or_exit(ExtenderSettings.from_env, "profile_extender: configuration error")
    configure_logging("profile_extender", settings.server.log_level)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
