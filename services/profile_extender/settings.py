"""Settings of the profile extender, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.entra import EntraSettings
from services.common.settings import ConfigError, EnvReader, ServerSettings
from services.profile_extender.enumeration import UserScope

__all__ = ["ExtenderSettings", "GraphSettings"]


def _user_scope(env: EnvReader) -> UserScope:
    try:
        return UserScope.parse(env.text("SYNC_USERS", UserScope.MEMBERS.value))
    except ValueError as error:
        raise ConfigError(f"SYNC_USERS: {error}") from None


@dataclass(frozen=True)
class GraphSettings:
    """How to use Microsoft Graph: where, how hard, how patiently."""

    graph_url: str
    # PEM bundle trusted for Graph; None = the system store.
    ca_bundle: str | None
    # Safety bound of concurrent $batch requests; below it, requests in flight
    # follow from the budget's rate and Graph's latency (see AdaptiveLimit).
    max_concurrency: int
    # Attempts for one profile before it is reported as failed.
    max_attempts: int
    request_timeout_seconds: float
    # The tenant's Graph quota (resource units per 10 s), None to follow the
    # tenant's size (see TenantQuota), and the share of it all extender
    # replicas together may use.
    quota_per_10s: int | None
    budget_share: float
    # Graph's write quota per app per tenant (writes per 150 s), of which the
    # same share is used.
    write_quota_per_150s: int = 3000
    # Which users a sync lists (SYNC_USERS; see enumeration.py).
    users: UserScope = UserScope.MEMBERS

    @property
    def write_budget_per_150s(self) -> int:
        return max(1, int(self.write_quota_per_150s * self.budget_share))

    @classmethod
    def from_env(cls, env: EnvReader) -> GraphSettings:
        return cls(
            graph_url=env.text("GRAPH_URL", "https://graph.microsoft.com/v1.0").rstrip("/"),
            ca_bundle=env.optional("AZURE_CA_BUNDLE"),
            max_concurrency=env.integer("GRAPH_MAX_CONCURRENCY", 256, minimum=1, maximum=1024),
            max_attempts=env.integer("GRAPH_MAX_ATTEMPTS", 8, minimum=1, maximum=100),
            request_timeout_seconds=env.number("GRAPH_TIMEOUT_SECONDS", 30.0, minimum=1.0),
            quota_per_10s=(
                env.integer("GRAPH_QUOTA_PER_10S", 0, minimum=1)
                if env.optional("GRAPH_QUOTA_PER_10S")
                else None
            ),
            budget_share=env.number("GRAPH_BUDGET_SHARE", 0.97, minimum=0.01),
            write_quota_per_150s=env.integer("GRAPH_WRITE_QUOTA_PER_150S", 3000, minimum=1),
            users=_user_scope(env),
        )


@dataclass(frozen=True)
class ExtenderSettings:
    server: ServerSettings
    entra: EntraSettings
    graph: GraphSettings
    redis_url: str
    # The differ's shard layout (its SHARD_COUNT): where LOB reads find a
    # user's stored profile.
    shard_count: int = 1
    # A user without a SharePoint profile is read again after this many hours
    # (PROFILE_RECHECK_HOURS; 0 reads them at every sync).
    profile_recheck_hours: int = 24

    @classmethod
    def from_env(cls, env: EnvReader | None = None) -> ExtenderSettings:
        env = env or EnvReader()
        return cls(
            server=ServerSettings.from_env(env, default_port=50051),
            entra=EntraSettings.from_env(env, with_secret=True),
            graph=GraphSettings.from_env(env),
            redis_url=env.text("REDIS_URL"),
            shard_count=env.integer("SHARD_COUNT", 1, minimum=1, maximum=1024),
            profile_recheck_hours=env.integer(
                "PROFILE_RECHECK_HOURS", 24, minimum=0, maximum=24 * 366
            ),
        )
