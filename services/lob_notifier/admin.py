"""Creating, replacing and removing subscribers, from the API or the subscribers file.

    admin = SubscriberAdmin(change_log, store, max_subscribers=100)
    settings = SubscriberSettings("crm", url="https://crm.example/hook", secret="...",
                                  source="api")
    record, created = await admin.put(settings, start_at="latest")
    await admin.reconcile_file(entries)   # the file's subscribers, exactly

The API may not change a subscriber that the file declares (the next
reconciliation would undo it): that is refused with FAILED_PRECONDITION.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence

from services.common.errors import FailedPrecondition, InvalidArgument, RateLimited
from services.lob_notifier.change_log import ChangeLog
from services.lob_notifier.destinations import DestinationPolicy, Refused
from services.lob_notifier.subscriber_rules import secret_problem, url_problem
from services.lob_notifier.subscribers import (
    SubscriberRecord,
    SubscriberSettings,
    SubscriberStore,
    TooManySubscribers,
)
from services.lob_notifier.subscribers_file import FileSubscriber

__all__ = ["SOURCE_API", "SOURCE_FILE", "SubscriberAdmin", "url_host"]

log = logging.getLogger(__name__)

SOURCE_API = "api"
SOURCE_FILE = "file"
# The file is the operator's declaration: it is never refused for the API's limit.
_FILE_LIMIT = 1_000_000


def url_host(url: str) -> str:
    """Only the host of a URL, for logs (paths and queries may carry tokens)."""
    try:
        return urllib.parse.urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class SubscriberAdmin:
    def __init__(
        self,
        change_log: ChangeLog,
        store: SubscriberStore,
        *,
        max_subscribers: int,
        destinations: DestinationPolicy | None = None,
    ) -> None:
        self._log = change_log
        self._store = store
        self._max_subscribers = max_subscribers
        self._destinations = destinations or DestinationPolicy()

    async def start_cursor(self, start_at: str) -> str:
        if start_at == "oldest":
            return await self._log.oldest_position()
        return await self._log.latest_position()

    async def put(
        self, settings: SubscriberSettings, *, start_at: str
    ) -> tuple[SubscriberRecord, bool]:
        name, url, secret, source = settings.name, settings.url, settings.secret, settings.source
        existing = await self._store.get(name)
        if source == SOURCE_API and existing is not None and existing.source == SOURCE_FILE:
            raise FailedPrecondition(
                f"subscriber {name} is declared in NOTIFIER_SUBSCRIBERS_FILE; change it there"
            )
        if url:
            problem = url_problem(url)
            if problem is not None:
                raise InvalidArgument(f"url: {problem}")
            if source == SOURCE_API:
                # The file is the operator's: its destinations are checked at
                # delivery (like every destination), not refused at start-up.
                try:
                    await self._destinations.check(url)
                except Refused as refusal:
                    raise InvalidArgument(f"url: {refusal}") from None
            if secret:
                problem = secret_problem(secret)
                if problem is not None:
                    raise InvalidArgument(f"secret: {problem}")
            elif existing is None or not existing.secret:
                raise InvalidArgument(
                    "secret: is required for a webhook subscriber (one with a url)"
                )
        elif secret:
            raise InvalidArgument("secret: only a webhook subscriber (one with a url) has a secret")
        try:
            record, created = await self._store.put(
                settings,
                start_cursor=await self.start_cursor(start_at),
                max_subscribers=_FILE_LIMIT if source == SOURCE_FILE else self._max_subscribers,
            )
        except TooManySubscribers as error:
            raise RateLimited(
                f"{error} (NOTIFIER_MAX_SUBSCRIBERS); delete one before adding {name}"
            ) from None
        log.info(
            "subscriber %s %s",
            name,
            "created" if created else "updated",
            extra={
                "subscriber": name,
                "source": source,
                "webhookHost": url_host(url) if url else None,
                "cursor": record.cursor,
            },
        )
        return record, created

    async def delete(self, name: str, *, source: str = SOURCE_API) -> bool:
        existing = await self._store.get(name)
        if existing is None:
            return False
        if source == SOURCE_API and existing.source == SOURCE_FILE:
            raise FailedPrecondition(
                f"subscriber {name} is declared in NOTIFIER_SUBSCRIBERS_FILE; remove it there"
            )
        deleted = await self._store.delete(name)
        log.info("subscriber %s deleted", name, extra={"subscriber": name, "source": source})
        return deleted

    async def reconcile_file(self, entries: Sequence[FileSubscriber]) -> None:
        """Makes the file's subscribers exist as declared, and removes those it dropped."""
        wanted = {entry.name: entry for entry in entries}
        for entry in entries:
            existing = await self._store.get(entry.name)
            if (
                existing is not None
                and existing.source == SOURCE_FILE
                and (existing.url, existing.secret) == (entry.url, entry.secret)
            ):
                continue
            await self.put(
                SubscriberSettings(
                    entry.name, url=entry.url, secret=entry.secret, source=SOURCE_FILE
                ),
                start_at=entry.start_at,
            )
        for record in await self._store.all():
            if record.source == SOURCE_FILE and record.name not in wanted:
                await self.delete(record.name, source=SOURCE_FILE)
