"""Sync outcomes as Prometheus metrics, read from the run records at scrape time.

Runs are performed by short-lived processes (the CronJob's `run`, one per
shard) as well as by the server itself (StartSync), and a `run` process ends
before anyone could scrape it. What they all share is the run records in
Redis (run_records.py), so the long-running differ server exports the
outcomes from there: on every scrape it reads the newest RECENT_RUNS records
(one ZREVRANGE and one MGET) and turns them into these series:

    profilesync_sync_records_up                       1 when the records could be read, else 0
    profilesync_sync_runs_total{state}                runs that reached a final state since
                                                      this server started (SUCCEEDED, PARTIAL,
                                                      FAILED); a held run counts once approved
                                                      (SUCCEEDED) or superseded (FAILED)
    profilesync_sync_last_success_timestamp_seconds   when every shard last succeeded: the
                                                      oldest of each shard's newest SUCCEEDED
                                                      end; absent while a shard has none
    profilesync_sync_held_runs                        runs waiting for ApproveDeletes
    profilesync_sync_running                          runs in progress (at most one a shard)
    profilesync_sync_last_run_state{state}            1 for the state of the newest finished run
    profilesync_sync_last_run_end_timestamp_seconds   when it ended
    profilesync_sync_last_run_duration_seconds        how long it took, start to end
    profilesync_sync_last_run_stage_duration_seconds{stage}   its stages
    profilesync_sync_last_run_changes{kind}           its created / updated / deleted users
    profilesync_sync_last_run_interval_seconds        the interval a paced sweep spread its
                                                      reads over (0: not paced)
    profilesync_sync_last_run_shortest_interval_seconds   > 0 when that sweep's reads took
                                                      longer than its interval: the shortest
                                                      interval the Graph budget allows
    profilesync_sync_last_run_users{kind}             its users: listed, profiles (read),
                                                      failed, without_profile (no SharePoint
                                                      profile: a state, not a failure)

Dry runs change nothing, so they count only in `running`. Every replica of
the server reads the same records: aggregate with `max`, never `sum`.

    collector = SyncRunsCollector(RunRecords(redis), asyncio.get_running_loop())
    REGISTRY.register(collector)

The Prometheus client calls `collect` from its HTTP server's threads; the
records are read on the server's event loop (where its Redis client lives)
with a deadline, and a scrape never fails because Redis does not answer:
`records_up` drops to 0 and the rest is left out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from profilesync.v1 import differ_pb2
from services.snapshot_differ.run_records import RunRecords, shard_label

__all__ = ["RECENT_RUNS", "SyncRunsCollector", "SyncRunsView"]

log = logging.getLogger(__name__)

# Records read per scrape: the newest runs only. With 8 shards every 15
# minutes this still reaches back six hours, longer than any run stays held.
RECENT_RUNS = 200
# A scrape waits this long for Redis at most (Prometheus' default timeout is 10 s).
READ_TIMEOUT_SECONDS = 4.0

FINAL_STATES = (differ_pb2.SUCCEEDED, differ_pb2.PARTIAL, differ_pb2.FAILED)
CHANGE_KINDS = ("created", "updated", "deleted")
# SyncCounts field by `kind` label of last_run_users.
USER_KINDS = {
    "listed": "users",
    "profiles": "profiles",
    "failed": "failed",
    "without_profile": "without_profile",
}

_PREFIX = "profilesync_sync_"


def _state_name(state: int) -> str:
    return differ_pb2.RunState.Name(state)


def _seconds(run: differ_pb2.SyncRun, field: str) -> float:
    return float(getattr(run, field).ToNanoseconds()) / 1e9


class SyncRunsView:
    """What one scrape shows, computed from the newest records (newest first).

    Keeps across scrapes only the ids of the recent final runs already counted,
    so `runs_total` grows by one for each run however often it is scraped.
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self.totals = {_state_name(state): 0 for state in FINAL_STATES}
        self._counted: set[str] = set()

    def families(self, runs: Sequence[differ_pb2.SyncRun] | None) -> list[Metric]:
        up = GaugeMetricFamily(
            _PREFIX + "records_up", "1 when the differ could read the run records from Redis"
        )
        up.add_metric([], 0.0 if runs is None else 1.0)
        if runs is not None:
            self._count(runs)
        families: list[Metric] = [up, self._totals_family()]
        if runs is not None:
            families += self._state_families(runs)
        return families

    def _count(self, runs: Sequence[differ_pb2.SyncRun]) -> None:
        for run in runs:
            final = run.state in FINAL_STATES and run.HasField("end_time")
            if run.dry_run or not final or run.run_id in self._counted:
                continue
            self._counted.add(run.run_id)
            # A run that ended before this server started was counted by the
            # server before it (or by nobody): a counter starts from zero.
            if _seconds(run, "end_time") >= self.started:
                self.totals[_state_name(run.state)] += 1
        # Ids fall out of the window for good once newer runs push them out.
        self._counted &= {run.run_id for run in runs}

    def _totals_family(self) -> Metric:
        family = CounterMetricFamily(
            _PREFIX + "runs",
            "Sync runs that reached a final state since this differ server started "
            "(dry runs aside), by state",
            labels=["state"],
        )
        for state, count in self.totals.items():
            family.add_metric([state], count, created=self.started)
        return family

    def _state_families(self, runs: Sequence[differ_pb2.SyncRun]) -> list[Metric]:
        real = [run for run in runs if not run.dry_run]
        families: list[Metric] = [
            _gauge(
                "held_runs",
                "Sync runs waiting for ApproveDeletes (they would delete too many users)",
                sum(run.state == differ_pb2.HELD_FOR_DELETES for run in real),
            ),
            _gauge(
                "running",
                "Sync runs in progress now (dry runs included; at most one a shard)",
                sum(run.state == differ_pb2.RUNNING for run in runs),
            ),
        ]
        last_success = _last_success(real)
        if last_success is not None:
            families.append(
                _gauge(
                    "last_success_timestamp_seconds",
                    "End of the oldest of each shard's newest successful run (Unix time): "
                    "every shard's profiles were synced after it",
                    last_success,
                )
            )
        finished = next((run for run in real if run.state in FINAL_STATES), None)
        if finished is not None:
            families += _last_run_families(finished)
        return families

    def describe(self) -> list[Metric]:
        """Families without samples, so registering never reads the records."""
        names = [
            "records_up",
            "held_runs",
            "running",
            "last_success_timestamp_seconds",
            "last_run_end_timestamp_seconds",
            "last_run_duration_seconds",
            "last_run_interval_seconds",
            "last_run_shortest_interval_seconds",
        ]
        families: list[Metric] = [GaugeMetricFamily(_PREFIX + name, name) for name in names]
        families += [
            GaugeMetricFamily(_PREFIX + name, name, labels=[label])
            for name, label in (
                ("last_run_state", "state"),
                ("last_run_stage_duration_seconds", "stage"),
                ("last_run_changes", "kind"),
            )
        ]
        families.append(CounterMetricFamily(_PREFIX + "runs", "runs", labels=["state"]))
        return families


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(_PREFIX + name, documentation, value=value)


def _last_success(runs: Sequence[differ_pb2.SyncRun]) -> float | None:
    """The layout (shard count) is the newest run's; None while a shard of it
    has no successful run among `runs`."""
    if not runs:
        return None
    count = max(1, runs[0].shard_count)
    newest: dict[str, float] = {}
    for run in runs:
        label = shard_label(run.shard_index, max(1, run.shard_count))
        if run.state == differ_pb2.SUCCEEDED and run.HasField("end_time"):
            newest[label] = max(newest.get(label, 0.0), _seconds(run, "end_time"))
    ends = [newest.get(shard_label(index, count)) for index in range(count)]
    if any(end is None for end in ends):
        return None
    return min(end for end in ends if end is not None)


def _last_run_families(run: differ_pb2.SyncRun) -> list[Metric]:
    state = GaugeMetricFamily(
        _PREFIX + "last_run_state",
        "1 for the final state of the newest finished sync run, 0 for the others",
        labels=["state"],
    )
    for final in FINAL_STATES:
        state.add_metric([_state_name(final)], 1.0 if run.state == final else 0.0)
    stages = GaugeMetricFamily(
        _PREFIX + "last_run_stage_duration_seconds",
        "Wall-clock seconds of each stage of the newest finished sync run",
        labels=["stage"],
    )
    for timing in run.timings:
        stages.add_metric([timing.stage], timing.seconds)
    changes = GaugeMetricFamily(
        _PREFIX + "last_run_changes",
        "Users created, updated and deleted by the newest finished sync run",
        labels=["kind"],
    )
    for kind in CHANGE_KINDS:
        changes.add_metric([kind], float(getattr(run.counts, kind)))
    users = GaugeMetricFamily(
        _PREFIX + "last_run_users",
        "Users of the newest finished sync run: listed, profiles read, failed, and "
        "without a SharePoint profile (not a failure)",
        labels=["kind"],
    )
    for kind, field in USER_KINDS.items():
        users.add_metric([kind], float(getattr(run.counts, field)))
    families: list[Metric] = [
        state,
        stages,
        changes,
        users,
        _gauge(
            "last_run_interval_seconds",
            "The interval the newest finished paced sweep spread its reads over (0: not paced)",
            run.interval_seconds,
        ),
        _gauge(
            "last_run_shortest_interval_seconds",
            "When > 0, the newest finished sweep could not read its shard within its "
            "interval: the shortest interval the Graph budget allows",
            run.shortest_interval_seconds,
        ),
    ]
    if run.HasField("end_time"):
        end = _seconds(run, "end_time")
        families += [
            _gauge(
                "last_run_end_timestamp_seconds",
                "When the newest finished sync run ended (Unix time)",
                end,
            ),
            _gauge(
                "last_run_duration_seconds",
                "Seconds from start to end of the newest finished sync run",
                max(0.0, end - _seconds(run, "start_time")),
            ),
        ]
    return families


class SyncRunsCollector(Collector):
    """A prometheus_client collector over the run records (see the module docstring)."""

    def __init__(
        self,
        records: RunRecords,
        loop: asyncio.AbstractEventLoop,
        *,
        window: int = RECENT_RUNS,
        timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self._records = records
        self._loop = loop
        self._window = window
        self._timeout = timeout
        self._view = SyncRunsView(started=time.time())
        # Scrapes may overlap (the client serves each in its own thread).
        self._lock = threading.Lock()
        self._was_up = True

    def describe(self) -> Iterator[Metric]:
        yield from self._view.describe()

    def collect(self) -> Iterator[Metric]:
        # One scrape at a time: they would read the same records, and the
        # outage is then logged exactly once.
        with self._lock:
            families = self._view.families(self._read())
        yield from families

    def _read(self) -> list[differ_pb2.SyncRun] | None:
        if _running_loop() is self._loop:
            # Waiting here would block the loop that must do the reading.
            self._report_down("collected on the event loop's own thread")
            return None
        reading = self._records.newest(self._window)
        try:
            future = asyncio.run_coroutine_threadsafe(reading, self._loop)
        except RuntimeError as error:  # the loop is closed: the server is stopping
            reading.close()
            self._report_down(str(error))
            return None
        try:
            runs = future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self._report_down(f"Redis did not answer within {self._timeout:g} s")
            return None
        except Exception as error:  # a scrape must not fail: records_up says it
            self._report_down(f"{type(error).__name__}: {error}")
            return None
        if not self._was_up:
            log.info("sync run records readable again")
            self._was_up = True
        return runs

    def _report_down(self, reason: str) -> None:
        # Once per outage, not once per scrape.
        if self._was_up:
            log.warning("cannot read the sync run records for metrics: %s", reason)
            self._was_up = False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
