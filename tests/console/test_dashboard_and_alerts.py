"""The Grafana dashboard and the alert rules in the chart: valid, readable by Grafana and
Prometheus, and naming only metrics that the running services export on /metrics, with the
values a sync leaves there."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from dashboard_queries import (
    GRAFANA_BUILTINS,
    all_panels,
    dashboard_queries,
    exported_names,
    metric_names,
    sample_values,
    variable_metrics,
    variables_in,
)

from devtools.devstack.lob_client import LobClient
from devtools.devstack.stack import Stack, StackOptions

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts" / "profile-sync" / "dashboards" / "profile-sync.json"
RULES = ROOT / "charts" / "profile-sync" / "alerts" / "rules.yaml"

PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap"}
SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^(0|(\d+(ms|s|m|h|d|w|y))+)$")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return loaded


@dataclass
class Scraped:
    """What each service's /metrics showed after one sync (the run as GET /v1/syncs/{id}
    answered) and a search."""

    run: dict[str, Any]
    texts: dict[str, str]

    @property
    def names(self) -> dict[str, set[str]]:
        return {name: exported_names(text) for name, text in self.texts.items()}

    def value(self, service: str, name: str, **labels: str) -> float | None:
        return sample_values(self.texts[service]).get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """The gateway's metrics are Envoy's statistics, which the chart serves on the
    gateway's /metrics."""
    options = StackOptions(state_dir=tmp_path_factory.mktemp("metrics-stack"), users=5, seed=2)
    with Stack(options) as stack:
        with LobClient.on_stack(stack) as client:
            run = client.sync_and_wait()
            assert run["state"] == "SUCCEEDED"
            client.http.get("/v1/profiles:search", params={"query": "skills:go"})
        pages = {
            name: f"http://127.0.0.1:{stack.processes[name].ready['metricsPort']}/metrics"
            for name in ("extender", "differ", "notifier")
        }
        pages["gateway"] = f"{stack.processes['gateway'].ready['adminUrl']}/stats/prometheus"
        texts = {}
        for name, url in pages.items():
            response = httpx.get(url, timeout=30, trust_env=False)
            response.raise_for_status()
            texts[name] = response.text
        yield Scraped(run, texts)


@pytest.fixture(scope="module")
def exported(scraped: Scraped) -> dict[str, set[str]]:
    """Metric names on each service's /metrics."""
    return scraped.names


# -- Grafana -------------------------------------------------------------------------------


def test_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] == "profile-sync"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert dashboard["id"] is None  # Grafana assigns it on import
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["time"]["from"].startswith("now-")
    panels = all_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["description"], f"{panel['title']} says what it shows"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_variables_are_defined_and_queries_parse(dashboard: dict[str, Any]) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    queries = list(dashboard_queries(dashboard))
    assert len(queries) >= 20
    for where, expr in queries:
        unknown = variables_in(expr) - set(variables) - set(GRAFANA_BUILTINS)
        assert not unknown, f"{where}: undefined variables {unknown}"
        try:
            assert metric_names(expr), f"{where}: selects no metric"
        except ValueError as error:
            pytest.fail(f"{where}: not valid PromQL ({error}): {expr}")


def test_dashboard_covers_what_operators_watch(dashboard: dict[str, Any]) -> None:
    queries = " ".join(expr for _, expr in dashboard_queries(dashboard))
    for needle in (
        "profilesync_sync_last_success_timestamp_seconds",
        "profilesync_sync_last_run_duration_seconds",  # sync duration
        "profilesync_sync_last_run_stage_duration_seconds",
        "profilesync_sync_runs_total",  # sync outcomes
        "profilesync_sync_last_run_state",
        "profilesync_sync_held_runs",
        "profilesync_graph_requests_total",
        "profilesync_graph_throttled_total",  # Graph 429s
        "profilesync_graph_budget_units_total",  # budget use
        "profilesync_notifier_events_published_total",
        "profilesync_notifier_webhook_events_delivered_total",
        "profilesync_notifier_subscriber_lag_seconds",
        "profilesync_notifier_subscriber_dead_letters",
        "ProfileExtender/SearchProfiles",  # search latency
    ):
        assert needle in queries, f"no panel shows {needle}"


def test_every_metric_the_dashboard_names_is_exported(
    dashboard: dict[str, Any], exported: dict[str, set[str]]
) -> None:
    everything = set().union(*exported.values())
    missing = [
        f"{where}: {name}"
        for where, expr in dashboard_queries(dashboard)
        for name in sorted(metric_names(expr))
        if name not in everything
    ]
    missing += [
        f"variable {variable}: {name}"
        for variable, name in variable_metrics(dashboard)
        if name not in everything
    ]
    assert not missing, "not on any service's /metrics:\n" + "\n".join(missing)


# -- alerts ---------------------------------------------------------------------------------


def test_alert_rules_are_prometheus_rules(rules: list[dict[str, Any]]) -> None:
    assert isinstance(rules, list) and rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert re.fullmatch(r"ProfileSync[A-Z][A-Za-z]+", rule["alert"])
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        try:
            assert metric_names(rule["expr"]), rule["alert"]
        except ValueError as error:
            pytest.fail(f"{rule['alert']}: not valid PromQL ({error})")


def test_alerts_cover_the_failures_operators_must_hear_of(rules: list[dict[str, Any]]) -> None:
    exprs = " ".join(rule["expr"] for rule in rules)
    for needle in (
        "profilesync_sync_last_success_timestamp_seconds",  # syncs stopped succeeding
        "profilesync_sync_held_runs",  # a run waits for its deletions to be approved
        "profilesync_notifier_subscriber_lag_seconds",
        "profilesync_graph_throttled_total",
        "profilesync_notifier_subscriber_dead_letters",
        "profilesync_sync_last_run_shortest_interval_seconds",  # a sweep outlasts its interval
    ):
        assert needle in exprs, f"no alert watches {needle}"


def test_every_metric_the_alerts_name_is_exported(
    rules: list[dict[str, Any]], exported: dict[str, set[str]]
) -> None:
    everything = set().union(*exported.values())
    missing = [
        f"{rule['alert']}: {name}"
        for rule in rules
        for name in sorted(metric_names(rule["expr"]))
        if name not in everything
    ]
    assert not missing, "not on any service's /metrics:\n" + "\n".join(missing)


def test_no_successful_sync_alert_also_fires_when_the_metric_is_absent(
    rules: list[dict[str, Any]],
) -> None:
    [rule] = [rule for rule in rules if rule["alert"] == "ProfileSyncNoSuccessfulSync"]
    assert (
        "time() - max by (namespace) (profilesync_sync_last_success_timestamp_seconds)"
        in (rule["expr"])
    )
    assert "absent_over_time(profilesync_sync_records_up" in rule["expr"]
    assert "unless on (namespace)" in rule["expr"]


def test_interval_not_met_alert_names_the_interval_to_set(rules: list[dict[str, Any]]) -> None:
    [rule] = [rule for rule in rules if rule["alert"] == "ProfileSyncIntervalNotMet"]
    assert (
        "max by (namespace) (profilesync_sync_last_run_shortest_interval_seconds) > 0"
        in (rule["expr"])
    )
    text = rule["annotations"]["description"]
    # The fix, with the figure to reach: the interval, or the budget share.
    assert "differ.intervalSeconds" in text and "at least {{ $value }} s" in text
    assert "graph.budgetShare" in text


# -- values after a sync ----------------------------------------------------------------------


def test_the_differ_exports_the_outcome_of_the_run(scraped: Scraped) -> None:
    run = scraped.run
    ended = dt.datetime.fromisoformat(run["endTime"].replace("Z", "+00:00")).timestamp()
    assert scraped.value("differ", "profilesync_sync_records_up") == 1
    assert scraped.value("differ", "profilesync_sync_runs_total", state="SUCCEEDED") == 1
    assert scraped.value("differ", "profilesync_sync_runs_total", state="FAILED") == 0
    last_success = scraped.value("differ", "profilesync_sync_last_success_timestamp_seconds")
    assert last_success == pytest.approx(ended, abs=0.001)
    assert scraped.value("differ", "profilesync_sync_last_run_changes", kind="created") == 5
    assert scraped.value("differ", "profilesync_sync_held_runs") == 0
    assert scraped.value("differ", "profilesync_sync_running") == 0
    fetch = next(t["seconds"] for t in run["timings"] if t["stage"] == "fetch")
    assert scraped.value(
        "differ", "profilesync_sync_last_run_stage_duration_seconds", stage="fetch"
    ) == pytest.approx(fetch)


def test_the_extender_counts_graph_requests_and_budget_units(scraped: Scraped) -> None:
    # Five users: at least one page of ids and five profile reads inside a $batch.
    ok = scraped.value("extender", "profilesync_graph_requests_total", outcome="ok")
    assert ok is not None and ok >= 6
    units = scraped.value("extender", "profilesync_graph_budget_units_total")
    assert units is not None and units >= ok
    budget = scraped.value("extender", "profilesync_graph_budget_units_per_10s")
    assert budget is not None and budget > 0
