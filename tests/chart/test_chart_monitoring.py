"""The Grafana dashboard and the alert rules as the chart ships them: a ConfigMap that
Grafana's sidecar loads and a PrometheusRule, each carrying its file unchanged, both optional."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_harness import CHART_DIR, MINIMAL, NAMESPACE, PREFIX, find, merged, of_kind, render

DASHBOARD_FILE = CHART_DIR / "dashboards" / "profile-sync.json"
RULES_FILE = CHART_DIR / "alerts" / "rules.yaml"

BOTH_ON = merged(
    MINIMAL,
    {"metrics": {"grafanaDashboard": {"enabled": True}, "prometheusRule": {"enabled": True}}},
)


def refusal(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    return str(caught.value)


def test_the_dashboard_configmap_carries_the_dashboard_with_the_sidecar_label() -> None:
    configmap = find(render(BOTH_ON), "ConfigMap", f"{PREFIX}-dashboard")
    assert configmap["metadata"]["namespace"] == NAMESPACE
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    [key] = configmap["data"]
    assert key.endswith(".json")
    shipped = json.loads(configmap["data"][key])
    assert shipped == json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    # Grafana's legend templates are not Helm's: they arrive as written.
    assert "{{state}}" in configmap["data"][key]


def test_the_sidecar_label_namespace_and_folder_can_be_set() -> None:
    values = merged(
        MINIMAL,
        {
            "metrics": {
                "grafanaDashboard": {
                    "enabled": True,
                    "namespace": "monitoring",
                    "label": "grafana.com/dashboard",
                    "labelValue": "profile-sync",
                    "annotations": {"grafana_folder": "Identity"},
                }
            }
        },
    )
    configmap = find(render(values), "ConfigMap", f"{PREFIX}-dashboard")
    metadata = configmap["metadata"]
    assert metadata["namespace"] == "monitoring"
    assert metadata["labels"]["grafana.com/dashboard"] == "profile-sync"
    assert "grafana_dashboard" not in metadata["labels"]
    assert metadata["annotations"] == {"grafana_folder": "Identity"}


def test_the_prometheus_rule_carries_every_alert_unchanged() -> None:
    values = merged(BOTH_ON, {"metrics": {"prometheusRule": {"labels": {"release": "kps"}}}})
    rule = find(render(values), "PrometheusRule", f"{PREFIX}-alerts")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "kps"
    [group] = rule["spec"]["groups"]
    assert group["name"] == "profile-sync"
    expected = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    assert group["rules"] == expected
    names = {r["alert"] for r in group["rules"]}
    assert {"ProfileSyncNoSuccessfulSync", "ProfileSyncRunHeldForDeletions"} <= names
    # Prometheus' own templates survive Helm.
    assert any("{{ $labels.subscriber }}" in r["annotations"]["summary"] for r in group["rules"])


def test_the_rule_can_live_in_another_namespace() -> None:
    values = merged(BOTH_ON, {"metrics": {"prometheusRule": {"namespace": "monitoring"}}})
    rule = find(render(values), "PrometheusRule", f"{PREFIX}-alerts")
    assert rule["metadata"]["namespace"] == "monitoring"


def test_neither_is_installed_unless_asked_for() -> None:
    manifests = render(MINIMAL)
    assert not of_kind(manifests, "PrometheusRule")
    assert not [
        m for m in of_kind(manifests, "ConfigMap") if m["metadata"]["name"].endswith("-dashboard")
    ]


@pytest.mark.parametrize("key", ["grafanaDashboard", "prometheusRule"])
def test_asking_for_them_without_metrics_is_refused(key: str) -> None:
    values = merged(MINIMAL, {"metrics": {"enabled": False, key: {"enabled": True}}})
    assert f"metrics.{key}.enabled needs metrics.enabled" in refusal(values)


def test_alerts_without_the_differ_server_are_refused() -> None:
    values = merged(BOTH_ON, {"differ": {"server": {"enabled": False}}})
    assert "metrics.prometheusRule.enabled needs differ.server.enabled" in refusal(values)


def test_a_label_that_kubernetes_would_refuse_is_refused() -> None:
    values = merged(BOTH_ON, {"metrics": {"grafanaDashboard": {"label": "not a label"}}})
    assert "/metrics/grafanaDashboard/label" in refusal(values)


def test_the_overdue_threshold_follows_the_schedule_and_touches_no_other_rule() -> None:
    # An hourly sync: four intervals are four hours.
    values = merged(BOTH_ON, {"metrics": {"prometheusRule": {"syncOverdueSeconds": 14400}}})
    [group] = find(render(values), "PrometheusRule", f"{PREFIX}-alerts")["spec"]["groups"]
    shipped = {r["alert"]: r for r in group["rules"]}
    written = {r["alert"]: r for r in yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))}
    assert shipped.keys() == written.keys()
    overdue = shipped.pop("ProfileSyncNoSuccessfulSync")
    assert "> 14400)" in overdue["expr"] and "[14400s]" in overdue["expr"]
    assert "3600" not in overdue["expr"] and "[1h]" not in overdue["expr"]
    assert "14400 seconds" in overdue["annotations"]["summary"]
    written.pop("ProfileSyncNoSuccessfulSync")
    assert shipped == written


def test_an_overdue_threshold_shorter_than_five_minutes_is_refused() -> None:
    values = merged(BOTH_ON, {"metrics": {"prometheusRule": {"syncOverdueSeconds": 60}}})
    assert "syncOverdueSeconds" in refusal(values)
