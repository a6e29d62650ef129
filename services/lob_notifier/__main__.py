"""`python -m services.lob_notifier`: serves the change log and pushes webhooks until SIGTERM.

    REDIS_URL=redis://127.0.0.1:6379/0 GRPC_PORT=50053 python -m services.lob_notifier

Settings are in services.lob_notifier.settings. A missing or malformed setting
(including a malformed NOTIFIER_SUBSCRIBERS_FILE) exits with code 2 and one
line on stderr naming the variable.

On SIGTERM: health turns NOT_SERVING, open change streams end and waiting
long-polls answer at once (clients resume from their cursor on another
replica), webhook delivery stops and gives its leases up so another replica
takes over without waiting for them to expire; then in-flight calls get
SHUTDOWN_GRACE_SECONDS.
"""

from __future__ import annotations

import asyncio
import sys

from services.common.logs import configure_logging
from services.common.redis_client import connect
from services.common.server import run_service
from services.common.settings import EnvReader, settings_or_exit
from services.lob_notifier.admin import SubscriberAdmin
from services.lob_notifier.admission import Admission
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.collector import tune_collector
from services.lob_notifier.delivery import DeliveryManager
from services.lob_notifier.servicer import LobNotifierServicer, binding
from services.lob_notifier.settings import NotifierSettings
from services.lob_notifier.subscribers import SubscriberStore
from services.lob_notifier.webhook import WebhookSender

SERVICE_LABEL = "lob_notifier"


async def serve(settings: NotifierSettings) -> None:
    # Readers (short reads; the waiting is done by one shared reader) and the
    # publisher have pools of their own: a sync's publish never waits behind
    # readers, however many streams are open.
    redis = connect(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        client_name="notifier-readers",
    )
    publisher = connect(
        settings.redis_url,
        max_connections=settings.redis_publish_connections,
        client_name="notifier-publish",
    )
    change_log = ChangeLog(
        redis,
        settings.stream_key,
        publisher=publisher,
        max_events=settings.max_events,
        max_age_seconds=settings.max_age_seconds,
        dedupe_ttl_seconds=settings.dedupe_ttl_seconds,
    )
    store = SubscriberStore(redis, change_log.keys)
    admin = SubscriberAdmin(
        change_log,
        store,
        max_subscribers=settings.delivery.max_subscribers,
        destinations=settings.delivery.destinations,
    )
    servicer = LobNotifierServicer(
        change_log,
        store,
        admin,
        heartbeat_seconds=settings.heartbeat_seconds,
        admission=Admission(
            max_waiting=settings.max_waiting_calls,
            max_waiting_per_caller=settings.max_waiting_calls_per_caller,
        ),
    )
    sender = WebhookSender.for_delivery(settings.delivery)
    delivery = DeliveryManager(
        change_log,
        store,
        admin,
        sender,
        settings.delivery,
        subscribers_file=settings.subscribers_file,
        file_entries=settings.file_subscribers,
    )
    await delivery.start()

    async def on_shutdown() -> None:
        await servicer.close()
        await delivery.stop()

    async def on_stop() -> None:
        await delivery.stop()  # when start-up failed before on_shutdown ran
        await sender.aclose()
        await change_log.aclose()
        await redis.aclose()
        await publisher.aclose()

    await run_service(
        SERVICE_LABEL,
        settings,
        [binding(servicer)],
        on_shutdown=on_shutdown,
        on_stop=on_stop,
    )


def main() -> int:
    settings = settings_or_exit(lambda: NotifierSettings.from_env(EnvReader()), SERVICE_LABEL)
    configure_logging(SERVICE_LABEL, settings.server.log_level)
    tune_collector()
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
