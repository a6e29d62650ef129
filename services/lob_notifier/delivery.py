"""Webhook push: every webhook subscriber delivered in order, by one replica at a time.

    manager = DeliveryManager(change_log, store, admin, sender, settings.delivery,
                              subscribers_file=path, file_entries=entries)
    await manager.start()     # looks for work every `poll_seconds`
    ...
    await manager.stop()      # stops delivering, gives the leases up at once

Every replica runs a manager. Every `poll_seconds` it re-reads the
subscribers file if it changed, applies the log's age limit (every
TRIM_INTERVAL_SECONDS), refreshes the per-subscriber gauges, and tries to
take the lease of each webhook subscriber nobody delivers. The lease
holder runs one worker for that subscriber:

  1. the next batch: dead letters queued for replay first, else up to
     `batch_size` events (and `max_batch_bytes` of JSON) after the position;
  2. POST it, signed (webhook.py); one batch in flight, so order is kept;
  3. 2xx: move the position past the batch; otherwise retry the same batch
     after min(backoff_max, backoff * 2^(n-1)) seconds, half of it random
     jitter (at least what Retry-After asked, up to backoff_max);
  4. after `max_attempts` failed attempts: park the batch as a dead letter,
     move past it, and go on with the next.

Failures and the next attempt time are kept in Redis, so a replica taking
over (the holder died, or was stopped) continues the count. Delivery is at
least once: a receiver that answered 2xx to a request whose answer was lost
sees the batch again, with the same X-ProfileSync-Delivery id and the same
event ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from services.common.errors import Unavailable
from services.common.settings import ConfigError
from services.lob_notifier import metrics
from services.lob_notifier.admin import SubscriberAdmin, url_host
from services.lob_notifier.change_log import ChangeLog, LogGap
from services.lob_notifier.lease import Lease
from services.lob_notifier.settings import DeliverySettings
from services.lob_notifier.status import export_gauges, remove_gauges, status_of
from services.lob_notifier.subscribers import (
    ReplayItem,
    SubscriberRecord,
    SubscriberStore,
    now_ms,
)
from services.lob_notifier.subscribers_file import (
    FileSubscriber,
    file_fingerprint,
    load_subscribers_file,
)
from services.lob_notifier.tail import Stop
from services.lob_notifier.webhook import WebhookSender, batch_body, event_json

__all__ = ["DeliveryManager", "backoff_seconds"]

log = logging.getLogger(__name__)

TRIM_INTERVAL_SECONDS = 30.0
# Per-subscriber gauges cost a few Redis calls each; Prometheus scrapes
# every 15-60 s, so refreshing more often buys nothing.
GAUGE_INTERVAL_SECONDS = 10.0
# A worker waits for new events at most this long before it looks at its
# subscriber's settings again.
READ_BLOCK_MS = 2_000
# On stop, a worker is given this long to finish what it is doing (a webhook
# request in flight is cut short after it), and as long again once cancelled.
STOP_GRACE_SECONDS = 2.0


async def _finish(task: asyncio.Task[Any], grace: float) -> None:
    """Lets `task` end by itself within `grace`, then cancels it and waits as long again.

    Never waits without a bound: a cancellation swallowed deep inside a client
    library (which retries on its own timeouts) must not hang a shutdown.
    """
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.warning("task %s did not stop in time", task.get_name())
    elif not task.cancelled() and task.exception() is not None:
        error = task.exception()
        if not isinstance(error, _LeaseLost):
            log.error("%s failed", task.get_name(), exc_info=error)


def backoff_seconds(failures: int, settings: DeliverySettings, retry_after: float | None) -> float:
    """Delay before the next attempt after `failures` failed ones (equal jitter)."""
    ceiling = min(settings.backoff_max_seconds, settings.backoff_seconds * 2 ** (failures - 1))
    delay: float = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.backoff_max_seconds))
    return delay


@dataclass(frozen=True)
class _Batch:
    delivery_id: str
    events: list[dict[str, Any]]
    first: str
    last: str
    # The position the batch was read after; "" marks a replayed dead letter,
    # which does not move the position.
    read_after: str
    replay_of: str = ""

    @property
    def is_replay(self) -> bool:
        return bool(self.replay_of)


class _LeaseLost(Exception):
    pass


def _delivery_id(name: str, first: str, last: str) -> str:
    return hashlib.sha256(f"{name}\n{first}\n{last}".encode()).hexdigest()[:32]


class DeliveryManager:
    """Runs the webhook workers this replica holds leases for (see the module doc)."""

    def __init__(
        self,
        change_log: ChangeLog,
        store: SubscriberStore,
        admin: SubscriberAdmin,
        sender: WebhookSender,
        settings: DeliverySettings,
        *,
        subscribers_file: str | None = None,
        file_entries: tuple[FileSubscriber, ...] | None = None,
    ) -> None:
        self.log = change_log
        self.store = store
        self.admin = admin
        self.sender = sender
        self.settings = settings
        self._file = subscribers_file
        self._file_entries = file_entries
        self._file_fingerprint: str | None = None
        self._workers: dict[str, tuple[_Worker, asyncio.Task[None]]] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_trim = 0.0
        self._last_gauges = 0.0
        self._gauged: set[str] = set()

    @property
    def delivering(self) -> list[str]:
        """Subscribers this replica delivers now."""
        return sorted(name for name, (_, task) in self._workers.items() if not task.done())

    async def start(self) -> None:
        if self._file is not None:
            self._file_fingerprint = file_fingerprint(self._file)
            entries = self._file_entries
            if entries is None:
                entries = load_subscribers_file(self._file)
            await self.admin.reconcile_file(entries)
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Stops looking for work and every worker; their leases are given up."""
        self._stopping.set()
        if self._task is not None:
            # First the round that claims work, so no worker starts after this.
            await _finish(self._task, 4 * STOP_GRACE_SECONDS)
        for worker, _ in self._workers.values():
            worker.halt()
        # Workers release their lease as they end, so another replica takes
        # over at once; each bounds its own wind-down (STOP_GRACE_SECONDS).
        await asyncio.gather(
            *(_finish(task, 4 * STOP_GRACE_SECONDS) for _, task in self._workers.values())
        )
        self._workers.clear()
        metrics.SUBSCRIBERS_DELIVERING.set(0)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._tick()
            except Unavailable as error:
                log.warning("webhook delivery waits for Redis: %s", error)
            except Exception:  # a bug must not end delivery for good
                log.exception("webhook delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.poll_seconds)

    async def _tick(self) -> None:
        await self._reload_file()
        if time.monotonic() - self._last_trim >= TRIM_INTERVAL_SECONDS:
            await self.log.trim()
            self._last_trim = time.monotonic()
        records = await self.store.all()
        for record in records:
            if record.is_webhook:
                await self._claim(record.name)
        metrics.SUBSCRIBERS_DELIVERING.set(len(self.delivering))
        if time.monotonic() - self._last_gauges >= GAUGE_INTERVAL_SECONDS:
            for record in records:
                export_gauges(record, await status_of(self.log, self.store, record))
            names = {record.name for record in records}
            for gone in self._gauged - names:
                remove_gauges(gone)
            self._gauged = names
            self._last_gauges = time.monotonic()

    async def _reload_file(self) -> None:
        if self._file is None:
            return
        fingerprint = file_fingerprint(self._file)
        if fingerprint is None or fingerprint == self._file_fingerprint:
            return
        try:
            entries = load_subscribers_file(self._file)
        except ConfigError as error:
            # Keep the subscribers as they were; the file may be mid-update.
            log.error("subscribers file not applied: %s", error)
            return
        await self.admin.reconcile_file(entries)
        self._file_fingerprint = fingerprint
        log.info("subscribers file applied", extra={"subscribers": len(entries)})

    async def _claim(self, name: str) -> None:
        running = self._workers.get(name)
        if self._stopping.is_set() or (running is not None and not running[1].done()):
            return
        lease = Lease(
            self.log.redis,
            self.store.keys.lease(name),
            owner=self.settings.replica,
            ttl_seconds=self.settings.lease_seconds,
        )
        if not await lease.acquire():
            return
        log.info("delivering webhooks", extra={"subscriber": name, "replica": lease.owner})
        worker = _Worker(self, name, lease)
        self._workers[name] = (worker, asyncio.create_task(worker.run(), name=f"webhook-{name}"))


class _Worker:
    """Delivers one subscriber while this replica holds its lease."""

    def __init__(self, manager: DeliveryManager, name: str, lease: Lease) -> None:
        self.m = manager
        self.name = name
        self.lease = lease
        self._idle_checked = ""
        self._gap_reported = ""
        # Set to stop: on shutdown, when the lease is lost, or when delivery ends.
        # The delivery loop checks it at every step and every wait ends on it,
        # so stopping does not depend on cancelling a call in flight.
        self._halt = Stop()

    def halt(self) -> None:
        self._halt.set()

    async def _pause(self, seconds: float) -> None:
        """Sleeps, but wakes at once when halted."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._halt.wait(), max(0.0, seconds))

    async def run(self) -> None:
        delivering = asyncio.create_task(self._deliver_forever(), name=f"deliver-{self.name}")
        renewing = asyncio.create_task(self.lease.keep_renewed(), name=f"lease-{self.name}")
        halted = asyncio.create_task(self._halt.wait())
        try:
            await asyncio.wait({delivering, renewing, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._halt.set()
            await _finish(delivering, STOP_GRACE_SECONDS)
            for task in (renewing, halted):
                task.cancel()
                await _finish(task, STOP_GRACE_SECONDS)
            await self.lease.release()
            log.info("stopped delivering webhooks", extra={"subscriber": self.name})

    async def _deliver_forever(self) -> None:
        while not self._halt.is_set():
            if not self.lease.held:
                raise _LeaseLost
            try:
                record = await self.m.store.get(self.name)
                if record is None or not record.is_webhook:
                    return  # deleted, or now a pull subscriber
                batch = await self._next_batch(record)
                if batch is not None:
                    await self._deliver(batch)
            except Unavailable as error:
                log.warning("webhook delivery waits for Redis: %s", error)
                await self._pause(self.m.settings.poll_seconds)

    async def _next_batch(self, record: SubscriberRecord) -> _Batch | None:
        replay = await self.m.store.next_replay(self.name)
        if replay is not None:
            events = await self.m.log.between(replay.first, replay.last, replay.count + 1)
            if len(events) != replay.count:
                # Retention removed (some of) its events since it was parked.
                await self._park_expired_replay(replay)
                return None
            return _Batch(
                replay.delivery_id,
                [event_json(event) for event in events],
                replay.first,
                replay.last,
                read_after="",
                replay_of=replay.dead_letter_id,
            )
        try:
            events = await self.m.log.read(
                record.cursor,
                count=self.m.settings.batch_size,
                block_ms=READ_BLOCK_MS,
                check_idle=record.cursor != self._idle_checked,
                stop=self._halt,
            )
        except LogGap as gap:
            await self._report_gap(record, gap)
            await self._pause(self.m.settings.poll_seconds)
            return None
        if not events:
            self._idle_checked = record.cursor
            return None
        shown: list[dict[str, Any]] = []
        size = 0
        for event in events:
            item = event_json(event)
            size += len(json.dumps(item, ensure_ascii=False))
            if shown and size > self.m.settings.max_batch_bytes:
                break
            shown.append(item)
        first, last = shown[0]["cursor"], shown[-1]["cursor"]
        return _Batch(_delivery_id(self.name, first, last), shown, first, last, record.cursor)

    async def _report_gap(self, record: SubscriberRecord, gap: LogGap) -> None:
        if self._gap_reported == record.cursor:
            return
        message = (
            f"position expired: {gap}; resynchronise, then move the position "
            "with SeekSubscriber (POST /v1/subscribers/{name}:seek)"
        )
        log.error(message, extra={"subscriber": self.name})
        await self.m.store.record_failure(
            self.name,
            self.lease.owner,
            error=message,
            failures=record.failures,
            failures_key=record.failures_key,
            next_attempt_ms=0,
        )
        self._gap_reported = record.cursor

    async def _park_expired_replay(self, replay: ReplayItem) -> None:
        await self.m.store.park(
            self.name,
            self.lease.owner,
            read_after="",
            new_cursor="",
            error="cannot replay: its events are no longer in the change log (retention)",
            dead_letter_max=self.m.settings.dead_letter_max,
            delivery_id=replay.delivery_id,
            first=replay.first,
            last=replay.last,
            count=replay.count,
            attempts=0,
        )

    async def _deliver(self, batch: _Batch) -> None:
        settings = self.m.settings
        record = await self.m.store.get(self.name)
        if record is None or not record.is_webhook:
            return
        failures = record.failures if record.failures_key == batch.delivery_id else 0
        body = batch_body(self.name, batch.delivery_id, batch.events)
        while True:
            if failures and record.next_attempt_ms > now_ms():
                # Carried over from the replica that held the lease before.
                await self._pause((record.next_attempt_ms - now_ms()) / 1000)
            if self._halt.is_set():
                return
            if not self.lease.held:
                raise _LeaseLost
            attempt = failures + 1
            outcome = await self.m.sender.send(
                record.url,
                record.secret,
                body,
                subscriber=self.name,
                delivery_id=batch.delivery_id,
                attempt=attempt,
            )
            metrics.WEBHOOK_SECONDS.labels(self.name).observe(outcome.seconds)
            if outcome.ok:
                metrics.WEBHOOK_REQUESTS.labels(self.name, "delivered").inc()
                metrics.WEBHOOK_EVENTS.labels(self.name).inc(len(batch.events))
                recorded = await self.m.store.record_success(
                    self.name,
                    self.lease.owner,
                    read_after=batch.read_after,
                    new_cursor="" if batch.is_replay else batch.last,
                    events=len(batch.events),
                )
                if not recorded:
                    raise _LeaseLost
                return
            metrics.WEBHOOK_REQUESTS.labels(self.name, "failed").inc()
            failures = attempt
            extra = {
                "subscriber": self.name,
                "webhookHost": url_host(record.url),
                "deliveryId": batch.delivery_id,
                "attempt": attempt,
                "status": outcome.status,
            }
            if failures >= settings.max_attempts:
                await self._park(batch, outcome.error, attempt)
                log.error("webhook batch dead-lettered: %s", outcome.error, extra=extra)
                return
            delay = backoff_seconds(failures, settings, outcome.retry_after)
            log.warning(
                "webhook attempt failed, retrying in %.1fs: %s", delay, outcome.error, extra=extra
            )
            recorded = await self.m.store.record_failure(
                self.name,
                self.lease.owner,
                error=outcome.error,
                failures=failures,
                failures_key=batch.delivery_id,
                next_attempt_ms=now_ms() + int(delay * 1000),
            )
            if not recorded:
                raise _LeaseLost
            await self._pause(delay)
            if self._halt.is_set():
                return
            latest = await self.m.store.get(self.name)
            if latest is None or not latest.is_webhook:
                return
            if latest.failures_key != batch.delivery_id:
                return  # the position was moved meanwhile (SeekSubscriber)
            # Settings may have changed (a corrected URL or a new secret).
            record = latest

    async def _park(self, batch: _Batch, error: str, attempts: int) -> None:
        parked = await self.m.store.park(
            self.name,
            self.lease.owner,
            read_after=batch.read_after,
            new_cursor="" if batch.is_replay else batch.last,
            error=error,
            dead_letter_max=self.m.settings.dead_letter_max,
            delivery_id=batch.delivery_id,
            first=batch.first,
            last=batch.last,
            count=len(batch.events),
            attempts=attempts,
        )
        if parked is None:
            raise _LeaseLost
        metrics.DEAD_LETTERED.labels(self.name).inc()
