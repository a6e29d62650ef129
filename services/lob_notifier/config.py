"""The notifier's settings, read once from the environment.

settings = NotifierSettings.from_env(EnvReader())
settings.stream_key  # "profilesync:changes" unless NOTIFIER_STREAM_KEY says otherwise
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import EnvReader, ServerSettings
from services.common.entra import EntraSettings

__all__ = ["DEFAULT_PORT", "NotifierSettings"]

DEFAULT_PORT = 50053
_DEFAULT_STREAM_KEY = "profilesync:changes"
_DEFAULT_MAX_EVENTS = 1_000_000
# A rerun after a crash happens within hours; a week leaves room for a
# long outage without keeping every id forever.
_DEFAULT_DEDUPE_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class NotifierSettings:
    """Everything `python -m services.lob_notifier` needs.

    `max_events` bounds the log (XADD MAXLEN ~, so Redis may keep slightly
    more); `dedupe_ttl_seconds` is how long an event id is remembered for
    dropping republished duplicates.
    """

    server: ServerSettings
    # The app registration whose tokens callers must present.
    entra: EntraSettings
    redis_url: str
    stream_key: str
    max_events: int
    dedupe_ttl_seconds: int

    @classmethod
    def from_env(cls, env: EnvReader) -> NotifierSettings:
        return cls(
            server=ServerSettings.from_env(env, default_port=DEFAULT_PORT),
            entra=EntraSettings.from_env(env, with_secret=False),
            redis_url=env.text("REDIS_URL"),
            stream_key=env.text("NOTIFIER_STREAM_KEY", _DEFAULT_STREAM_KEY),
            max_events=env.integer("NOTIFIER_MAX_EVENTS", _DEFAULT_MAX_EVENTS, minimum=1),
            dedupe_ttl_seconds=env.integer(
                "NOTIFIER_DEDUPE_TTL_SECONDS", _DEFAULT_DEDUPE_TTL_SECONDS, minimum=1
            ),
        )
