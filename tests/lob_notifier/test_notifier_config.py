"""NotifierSettings from the environment: defaults and failures naming the variable."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, EnvReader
from services.lob_notifier.config import NotifierSettings


def test_defaults() -> None:
    settings = NotifierSettings.from_env(EnvReader({"REDIS_URL": "redis://localhost:6379/0"}))

    assert settings.server.port == 50053
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.stream_key == "profilesync:changes"
    assert settings.max_events == 1_000_000
    assert settings.dedupe_ttl_seconds == 7 * 24 * 3600


def test_overrides() -> None:
    settings = NotifierSettings.from_env(
        EnvReader(
            {
                "REDIS_URL": "rediss://cache:6379/0",
                "GRPC_PORT": "0",
                "NOTIFIER_STREAM_KEY": "tenant-a:changes",
                "NOTIFIER_MAX_EVENTS": "5000",
                "NOTIFIER_DEDUPE_TTL_SECONDS": "3600",
            }
        )
    )

    assert settings.server.port == 0
    assert settings.stream_key == "tenant-a:changes"
    assert settings.max_events == 5000
    assert settings.dedupe_ttl_seconds == 3600


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "REDIS_URL"),
        ({"REDIS_URL": "redis://x", "NOTIFIER_MAX_EVENTS": "0"}, "NOTIFIER_MAX_EVENTS"),
        ({"REDIS_URL": "redis://x", "NOTIFIER_DEDUPE_TTL_SECONDS": "week"}, "NOTIFIER_DEDUPE_TTL"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        NotifierSettings.from_env(EnvReader(environ))
