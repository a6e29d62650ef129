"""Settings of the profile extender, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import EnvReader, ServerSettings

__all__ = ["ExtenderSettings", "GraphSettings"]

MICROSOFT_AUTHORITY_HOST = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class GraphSettings:
    """How to reach Microsoft Graph and the Entra ID authority."""

    graph_url: str
    authority: str
    tenant_id: str
    client_id: str
    client_secret: str
    # PEM bundle trusted for Graph and the authority; None = the system store.
    ca_bundle: str | None
    # Concurrent $batch requests in flight.
    max_concurrency: int
    # Attempts for one profile before it is reported as failed.
    max_attempts: int
    request_timeout_seconds: float

    @property
    def instance_discovery(self) -> bool:
        # MSAL asks Microsoft's endpoint to validate the authority; an
        # authority elsewhere (the emulator, sovereign proxies) cannot be.
        return self.authority.startswith(MICROSOFT_AUTHORITY_HOST)

    @classmethod
    def from_env(cls, env: EnvReader) -> GraphSettings:
        tenant_id = env.text("AZURE_TENANT_ID")
        host = env.text("AZURE_AUTHORITY_HOST", MICROSOFT_AUTHORITY_HOST).rstrip("/")
        return cls(
            graph_url=env.text("GRAPH_URL", "https://graph.microsoft.com/v1.0").rstrip("/"),
            authority=f"{host}/{tenant_id}",
            tenant_id=tenant_id,
            client_id=env.text("AZURE_CLIENT_ID"),
            client_secret=env.text("AZURE_CLIENT_SECRET"),
            ca_bundle=env.optional("GRAPH_CA_BUNDLE"),
            max_concurrency=env.integer("GRAPH_MAX_CONCURRENCY", 8, minimum=1, maximum=256),
            max_attempts=env.integer("GRAPH_MAX_ATTEMPTS", 6, minimum=1, maximum=100),
            request_timeout_seconds=env.number("GRAPH_TIMEOUT_SECONDS", 30.0, minimum=1.0),
        )


@dataclass(frozen=True)
class ExtenderSettings:
    server: ServerSettings
    graph: GraphSettings
    redis_url: str

    @classmethod
    def from_env(cls, env: EnvReader | None = None) -> ExtenderSettings:
        env = env or EnvReader()
        return cls(
            server=ServerSettings.from_env(env, default_port=50051),
            graph=GraphSettings.from_env(env),
            redis_url=env.text("REDIS_URL"),
        )
