"""Everything one running emulator holds in memory.

state = EmulatorState.build(users=250, seed=7)
app = create_app(state)
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

from devtools.graph_emulator.accounts import TenantMix
from devtools.graph_emulator.defaults import (
    DEFAULT_APP_ROLES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_GRAPH_APP_ROLES,
    DEFAULT_SEED,
    DEFAULT_TENANT_DOMAIN,
    DEFAULT_TENANT_ID,
    DEFAULT_USER_PASSWORD,
)
from devtools.graph_emulator.faults import Faults
from devtools.graph_emulator.settings import EmulatorConfig, default_quota_per_10s
from devtools.graph_emulator.signing_key import SigningKey, generate_signing_key
from devtools.graph_emulator.stats import Stats
from devtools.graph_emulator.store import UserStore
from devtools.graph_emulator.tenant import generate_users
from devtools.graph_emulator.throttle import Throttle
from devtools.graph_emulator.tokens import TokenService


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
    graph_app_roles: tuple[str, ...] = DEFAULT_GRAPH_APP_ROLES
    self_app_roles: tuple[str, ...] = DEFAULT_APP_ROLES
    #: The password every emulated user signs in with (resource-owner password grant).
    user_password: str = DEFAULT_USER_PASSWORD
    throttle: Throttle = field(default_factory=Throttle)
    stats: Stats = field(default_factory=Stats)
    # Seeded from the config seed so injected faults and batch order are reproducible.
    faults: Faults = field(default_factory=lambda: Faults(DEFAULT_SEED))
    batch_rng: random.Random = field(default_factory=random.Random)
    create_rng: random.Random = field(default_factory=random.Random)
    latency_rng: random.Random = field(default_factory=random.Random)
    #: Operations whose answers are waiting out a latency right now.
    operations_waiting: int = 0
    #: The kinds of account the tenant was generated with (guests, rooms, ...).
    mix: TenantMix = field(default_factory=TenantMix)
    #: Groups by lower-case id: {"id", "displayName", "members": [user or group ids]}.
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reseed(self.config.seed)

    def reseed(self, seed: int) -> None:
        self.faults.reseed(seed)
        self.batch_rng.seed(f"batch:{seed}")
        self.create_rng.seed(f"create:{seed}")
        self.latency_rng.seed(f"latency:{seed}")

    def profile_read_delay(self) -> float:
        """Seconds one read of SharePoint-backed properties takes (0 unless configured)."""
        latency = self.config.profile_latency
        return latency.draw(self.latency_rng) if latency is not None else 0.0

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
        *,
        quota_per_10s: int | None = None,
        write_quota_per_150s: int | None = None,
        app_roles: tuple[str, ...] = DEFAULT_APP_ROLES,
        user_password: str = DEFAULT_USER_PASSWORD,
        mix: TenantMix | None = None,
        graph_app_roles: tuple[str, ...] = DEFAULT_GRAPH_APP_ROLES,
    ) -> EmulatorState:
        key = signing_key or generate_signing_key()
        config = EmulatorConfig(
            quota_per_10s=default_quota_per_10s(users) if quota_per_10s is None else quota_per_10s,
            seed=seed,
        )
        if write_quota_per_150s is not None:
            config = dataclasses.replace(config, write_quota_per_150s=write_quota_per_150s)
        return cls(
            tenant_id=tenant_id.lower(),
            client_id=client_id.lower(),
            client_secret=client_secret,
            store=UserStore(generate_users(users, seed, mix=mix)),
            tokens=TokenService(key, tenant_id.lower(), client_id.lower()),
            config=config,
            public_url=public_url,
            self_app_roles=tuple(app_roles),
            user_password=user_password,
            mix=mix or TenantMix(),
            graph_app_roles=tuple(graph_app_roles),
        )
