"""Settings of the snapshot differ, read once from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from services.common.entra import EntraSettings
from services.common.settings import ConfigError, EnvReader, ServerSettings
from services.snapshot_differ.cluster import service_account_namespace
from services.snapshot_differ.s3_store import S3Settings

__all__ = ["SYNC_MODES", "DifferSettings"]

# Where StartSync runs a sync: in the serving process (the embedded default),
# or as a Job made from the differ's CronJob.
SYNC_MODES = ("in-process", "kubernetes")
_RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class DifferSettings:
    server: ServerSettings
    # The app registration: to check callers' tokens and to call the
    # extender and the notifier with the app's own token.
    entra: EntraSettings
    extender_addr: str
    notifier_addr: str
    redis_url: str
    # `s3://bucket/prefix`, `file:///abs/dir` or a plain directory path.
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
    # Bucket, prefix, region, endpoint and encryption, with an s3:// store.
    s3: S3Settings | None = None
    # A run that would delete more than this percentage of the shard's
    # users, or more than this many, is held until approved.
    delete_threshold_percent: float = 20.0
    delete_threshold_count: int = 500
    sync_mode: str = "in-process"
    # Cluster mode: the CronJob Jobs are made from, and its namespace.
    cronjob_name: str | None = None
    namespace: str | None = None
    # Cluster mode: how long the shard stays reserved for a new Job's pod to start.
    job_start_seconds: int = 600
    # `run`: the id a Job's run takes (set on the Job by StartSync), and dry run.
    run_id: str | None = None
    dry_run: bool = False
    # `sweep`: every user of the shard is read at least once per interval,
    # the reads spread evenly over it.
    interval_seconds: int = 900
    # `sweep`: the share of the Graph budget for re-reading users whose
    # profile just changed (hot.py), their first re-read after this many
    # seconds, doubling while they stay quiet, until quiet this long.
    hot_share: float = 0.2
    hot_reread_seconds: float = 15.0
    hot_quiet_seconds: float = 600.0

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
        store = env.text("SNAPSHOT_STORE", os.path.abspath(".state/snapshots"))
        percent = env.number("DELETE_THRESHOLD_PERCENT", 20.0)
        if percent > 100:
            raise ConfigError(f"DELETE_THRESHOLD_PERCENT must be at most 100, got {percent}")
        mode = env.text("SYNC_MODE", "in-process")
        if mode not in SYNC_MODES:
            raise ConfigError(f"SYNC_MODE must be one of {', '.join(SYNC_MODES)}, got {mode!r}")
        cronjob = namespace = None
        if mode == "kubernetes":
            cronjob = env.text("CRONJOB_NAME")
            namespace = env.optional("POD_NAMESPACE") or service_account_namespace()
            if namespace is None:
                raise ConfigError("POD_NAMESPACE is required with SYNC_MODE=kubernetes")
        hot_share = env.number("HOT_SHARE", 0.2)
        if not 0 <= hot_share <= 1:
            raise ConfigError(
                f"HOT_SHARE must be from 0 to 1 (0 turns re-reads off), got {hot_share}"
            )
        hot_reread = env.number("HOT_REREAD_SECONDS", 15.0)
        hot_quiet = env.number("HOT_QUIET_SECONDS", 600.0)
        if not 0.5 <= hot_reread <= hot_quiet:
            raise ConfigError(
                "HOT_REREAD_SECONDS must be at least 0.5 and at most HOT_QUIET_SECONDS "
                f"({hot_quiet:g}), got {hot_reread:g}"
            )
        run_id = env.optional("SYNC_RUN_ID")
        if run_id is not None and not _RUN_ID.fullmatch(run_id):
            raise ConfigError(
                f"SYNC_RUN_ID must be a run id ([0-9A-Za-z_-], up to 64), got {run_id!r}"
            )
        return cls(
            server=ServerSettings.from_env(env, default_port=50052),
            entra=EntraSettings.from_env(env, with_secret=True),
            extender_addr=env.text("EXTENDER_ADDR"),
            notifier_addr=env.text("NOTIFIER_ADDR"),
            redis_url=env.text("REDIS_URL"),
            snapshot_store=store,
            shard_index=shard_index,
            shard_count=shard_count,
            part_size=env.integer("SNAPSHOT_PART_SIZE", 5000, minimum=1),
            publish_batch=env.integer("PUBLISH_BATCH", 500, minimum=1, maximum=1000),
            compare_batch=env.integer("COMPARE_BATCH", 1000, minimum=1, maximum=100_000),
            lock_ttl_seconds=env.integer("SYNC_LOCK_TTL_SECONDS", 60, minimum=5),
            keep_snapshots=env.integer("SNAPSHOT_RETENTION", 10, minimum=1),
            s3=S3Settings.from_env(env, store) if store.startswith("s3://") else None,
            delete_threshold_percent=percent,
            delete_threshold_count=env.integer("DELETE_THRESHOLD_COUNT", 500),
            sync_mode=mode,
            cronjob_name=cronjob,
            namespace=namespace,
            job_start_seconds=env.integer("SYNC_JOB_START_SECONDS", 600, minimum=10),
            interval_seconds=env.integer(
                "SYNC_INTERVAL_SECONDS", 900, minimum=10, maximum=7 * 24 * 3600
            ),
            hot_share=hot_share,
            hot_reread_seconds=hot_reread,
            hot_quiet_seconds=hot_quiet,
            run_id=run_id,
            dry_run=env.flag("SYNC_DRY_RUN", False),
        )
