"""Settings of the snapshot differ, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.common.config import ConfigError, EnvReader, ServerSettings
from services.common.entra import EntraSettings

__all__ = ["DifferSettings"]


@dataclass(frozen=True)
class DifferSettings:
    server: ServerSettings
    # The app registration: to check callers' tokens and to call the
    # extender and the notifier with the app's own token.
    entra: EntraSettings
    extender_addr: str
    notifier_addr: str
    redis_url: str
    # `file:///abs/dir` or a plain directory path (S3 comes with `s3://bucket/prefix`).
    snapshot_store: str
    # The shard this process syncs by default (a Kubernetes Indexed Job sets
    # JOB_COMPLETION_INDEX).
    shard_index: int
    shard_count: int
    # Profiles per compressed snapshot part.
    part_size: int
    # Events per Publish call to the notifier.
    publish_batch: int
    # Profiles compared per Redis round trip.
    compare_batch: int
    lock_ttl_seconds: int
    # Snapshots kept per shard (older ones are removed after a commit).
    keep_snapshots: int

    @classmethod
    def from_env(cls, env: EnvReader | None = None) -> DifferSettings:
        env = env or EnvReader()
        shard_count = env.integer("SHARD_COUNT", 1, minimum=1, maximum=1024)
        default_index = env.integer("JOB_COMPLETION_INDEX", 0, maximum=1023)
        shard_index = env.integer("SHARD_INDEX", default_index, maximum=1023)
        if shard_index >= shard_count:
            raise ConfigError(
                f"SHARD_INDEX must be below SHARD_COUNT ({shard_count}), got {shard_index}"
            )
        return cls(
            server=ServerSettings.from_env(env, default_port=50052),
            entra=EntraSettings.from_env(env, with_secret=True),
            extender_addr=env.text("EXTENDER_ADDR"),
            notifier_addr=env.text("NOTIFIER_ADDR"),
            redis_url=env.text("REDIS_URL"),
            snapshot_store=env.text("SNAPSHOT_STORE", os.path.abspath(".state/snapshots")),
            shard_index=shard_index,
            shard_count=shard_count,
            part_size=env.integer("SNAPSHOT_PART_SIZE", 5000, minimum=1),
            publish_batch=env.integer("PUBLISH_BATCH", 500, minimum=1, maximum=1000),
            compare_batch=env.integer("COMPARE_BATCH", 1000, minimum=1, maximum=100_000),
            lock_ttl_seconds=env.integer("SYNC_LOCK_TTL_SECONDS", 60, minimum=5),
            keep_snapshots=env.integer("SNAPSHOT_RETENTION", 10, minimum=1),
        )
