"""Everything one running emulator holds in memory."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .config import EmulatorConfig, default_quota_per_10s
from .defaults import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_SEED,
    DEFAULT_TENANT_DOMAIN,
    DEFAULT_TENANT_ID,
)
from .keys import SigningKey, generate_signing_key
from .stats import Stats
from .store import UserStore
from .tenant import generate_users
from .throttle import Throttle
from .tokens import TokenService


@dataclass
class EmulatorState:
    tenant_id: str
    client_id: str
    client_secret: str
    store: UserStore
    tokens: TokenService
    config: EmulatorConfig
    domain: str = DEFAULT_TENANT_DOMAIN
    #: Fixed public base URL (``https://127.0.0.1:PORT``); when None it is taken from each
    #: request's Host, which is what the client used to reach us.
    public_url: str | None = None
    #: App roles granted to the app's own client-credentials tokens, per audience kind.
    graph_app_roles: tuple[str, ...] = ("User.Read.All",)
    self_app_roles: tuple[str, ...] = ("Profiles.Read",)
    throttle: Throttle = field(default_factory=Throttle)
    stats: Stats = field(default_factory=Stats)
    # Seeded from the config seed so injected failures and batch order are reproducible.
    failure_rng: random.Random = field(default_factory=random.Random)
    batch_rng: random.Random = field(default_factory=random.Random)
    create_rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.reseed(self.config.seed)

    def reseed(self, seed: int) -> None:
        self.failure_rng.seed(f"failures:{seed}")
        self.batch_rng.seed(f"batch:{seed}")
        self.create_rng.seed(f"create:{seed}")

    def set_config(self, config: EmulatorConfig) -> None:
        if config.seed != self.config.seed:
            self.reseed(config.seed)
        if (config.quota_per_10s, config.write_quota_per_150s) != (
            self.config.quota_per_10s,
            self.config.write_quota_per_150s,
        ):
            # A new budget starts from an empty window, so tests see its effect at once.
            self.throttle.reset()
        self.config = config

    @classmethod
    def build(
        cls,
        users: int,
        seed: int = DEFAULT_SEED,
        tenant_id: str = DEFAULT_TENANT_ID,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        signing_key: SigningKey | None = None,
        public_url: str | None = None,
    ) -> EmulatorState:
        key = signing_key or generate_signing_key()
        return cls(
            tenant_id=tenant_id.lower(),
            client_id=client_id.lower(),
            client_secret=client_secret,
            store=UserStore(generate_users(users, seed)),
            tokens=TokenService(key, tenant_id.lower(), client_id.lower()),
            config=EmulatorConfig(quota_per_10s=default_quota_per_10s(users), seed=seed),
            public_url=public_url,
        )
