"""NotifierSettings from the environment: defaults and failures naming the variable."""

from __future__ import annotations

import json
import pathlib

import pytest

from services.common.settings import ConfigError, EnvReader
from services.lob_notifier.settings import NotifierSettings

BASE = {
    "REDIS_URL": "redis://localhost:6379/0",
    "AZURE_TENANT_ID": "tenant",
    "AZURE_CLIENT_ID": "client",
}


def settings(**environ: str) -> NotifierSettings:
    return NotifierSettings.from_env(EnvReader({**BASE, **environ}))


def test_defaults() -> None:
    loaded = settings()

    assert loaded.server.port == 50053
    assert loaded.redis_url == "redis://localhost:6379/0"
    assert loaded.stream_key == "profilesync:changes"
    assert loaded.max_events == 1_000_000
    assert loaded.max_age_seconds == 7 * 24 * 3600
    assert loaded.dedupe_ttl_seconds == 7 * 24 * 3600
    assert loaded.heartbeat_seconds == 15
    assert loaded.subscribers_file is None and loaded.file_subscribers == ()
    delivery = loaded.delivery
    assert (delivery.batch_size, delivery.max_attempts, delivery.timeout_seconds) == (100, 15, 10)
    assert (delivery.backoff_seconds, delivery.backoff_max_seconds) == (1, 300)
    assert delivery.lease_seconds == 15 and delivery.max_subscribers == 100


def test_overrides() -> None:
    loaded = settings(
        REDIS_URL="rediss://cache:6379/0",
        GRPC_PORT="0",
        NOTIFIER_STREAM_KEY="tenant-a:changes",
        NOTIFIER_MAX_EVENTS="5000",
        NOTIFIER_MAX_AGE_SECONDS="86400",
        NOTIFIER_HEARTBEAT_SECONDS="30",
        NOTIFIER_WEBHOOK_MAX_ATTEMPTS="4",
        NOTIFIER_WEBHOOK_BATCH_SIZE="20",
        HOSTNAME="notifier-7d9f-abcde",
    )

    assert loaded.server.port == 0
    assert loaded.stream_key == "tenant-a:changes"
    assert loaded.max_events == 5000
    assert loaded.max_age_seconds == 86400
    # The dedupe window follows the age limit unless set on its own.
    assert loaded.dedupe_ttl_seconds == 86400
    assert settings(NOTIFIER_DEDUPE_TTL_SECONDS="3600").dedupe_ttl_seconds == 3600
    assert loaded.heartbeat_seconds == 30
    assert (loaded.delivery.max_attempts, loaded.delivery.batch_size) == (4, 20)
    assert loaded.delivery.replica.startswith("notifier-7d9f-abcde-")


def test_the_subscribers_file_is_read_at_start(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "subscribers.json"
    path.write_text(
        json.dumps([{"name": "crm", "url": "https://crm.example/h", "secret": "s" * 20}])
    )

    loaded = settings(NOTIFIER_SUBSCRIBERS_FILE=str(path))

    assert loaded.subscribers_file == str(path)
    [entry] = loaded.file_subscribers
    assert (entry.name, entry.url, entry.start_at) == ("crm", "https://crm.example/h", "latest")
    assert "s" * 20 not in repr(entry)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"NOTIFIER_MAX_EVENTS": "0"}, "NOTIFIER_MAX_EVENTS"),
        ({"NOTIFIER_DEDUPE_TTL_SECONDS": "week"}, "NOTIFIER_DEDUPE_TTL"),
        ({"NOTIFIER_MAX_AGE_SECONDS": "10"}, "NOTIFIER_MAX_AGE_SECONDS"),
        ({"NOTIFIER_HEARTBEAT_SECONDS": "301"}, "NOTIFIER_HEARTBEAT_SECONDS"),
        ({"NOTIFIER_WEBHOOK_BATCH_SIZE": "1001"}, "NOTIFIER_WEBHOOK_BATCH_SIZE"),
        ({"NOTIFIER_LEASE_SECONDS": "5"}, "NOTIFIER_LEASE_SECONDS"),
        ({"NOTIFIER_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5"}, "NOTIFIER_WEBHOOK_BACKOFF_MAX"),
        ({"NOTIFIER_SUBSCRIBERS_FILE": "/nonexistent/subscribers.json"}, "cannot read it"),
        ({"NOTIFIER_WEBHOOK_ALLOWED_DESTINATIONS": "10.0.0.0/40"}, "ALLOWED_DESTINATIONS"),
        ({"NOTIFIER_MAX_WAITING_CALLS": "0"}, "NOTIFIER_MAX_WAITING_CALLS"),
        ({"NOTIFIER_REDIS_MAX_CONNECTIONS": "1"}, "NOTIFIER_REDIS_MAX_CONNECTIONS"),
        (
            {"NOTIFIER_MAX_WAITING_CALLS": "500", "GRPC_MAX_CONCURRENT_RPCS": "500"},
            "GRPC_MAX_CONCURRENT_RPCS",
        ),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        settings(**environ)


def test_the_concurrency_limit_sits_above_the_stream_cap_by_default() -> None:
    loaded = settings(NOTIFIER_MAX_WAITING_CALLS="2000")
    assert loaded.max_waiting_calls == 2000
    assert loaded.max_waiting_calls_per_caller == 1000
    assert loaded.server.max_concurrent_rpcs == 3000
