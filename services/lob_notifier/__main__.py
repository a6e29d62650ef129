"""`python -m services.lob_notifier`: serves the change log until SIGTERM.

    REDIS_URL=redis://127.0.0.1:6379/0 GRPC_PORT=50053 python -m services.lob_notifier

Settings are in services.lob_notifier.config. A missing or malformed setting
exits with code 2 and one line on stderr naming the variable.
"""

from __future__ import annotations

import asyncio
import sys

from services.common.auth import TokenVerifier
from services.common.config import ConfigError, EnvReader
from services.common.logs import configure_logging
from services.common.redis_client import connect
from services.common.server import run_service
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.config import NotifierSettings
from services.lob_notifier.servicer import LobNotifierServicer, binding

SERVICE_LABEL = "lob_notifier"


async def serve(settings: NotifierSettings) -> None:
    redis = connect(settings.redis_url)
    change_log = ChangeLog(
        redis,
        settings.stream_key,
        max_events=settings.max_events,
        dedupe_ttl_seconds=settings.dedupe_ttl_seconds,
    )
    await run_service(
        SERVICE_LABEL,
        settings.server,
        [binding(LobNotifierServicer(change_log))],
        verifier=TokenVerifier(settings.entra),
        on_stop=redis.aclose,
    )


def main() -> int:
    try:
        settings = NotifierSettings.from_env(EnvReader())
    except ConfigError as error:
        print(f"{SERVICE_LABEL}: {error}", file=sys.stderr)
        return 2
    try:
        configure_logging(SERVICE_LABEL, settings.server.log_level)
    except ValueError:
        # ServerSettings does not check the level name; logging does.
        print(
            f"{SERVICE_LABEL}: LOG_LEVEL must be a logging level name, "
            f"got {settings.server.log_level!r}",
            file=sys.stderr,
        )
        return 2
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
