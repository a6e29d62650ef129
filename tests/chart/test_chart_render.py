"""The chart renders, lints strictly and makes valid Kubernetes objects for every value set."""

from __future__ import annotations

import pathlib
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from chart_harness import CHART_DIR, OLDEST_KUBE, PREFIX, VALUE_SETS, find, of_kind, render

NEWEST_KUBE = kubernetes_validate.latest_version()
KUBE_VERSIONS = [OLDEST_KUBE, NEWEST_KUBE]

# Custom resources whose schemas kubernetes-validate does not ship.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def validate_all(manifests: list[dict[str, Any]], version: str) -> list[str]:
    problems = []
    for manifest in manifests:
        if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_KINDS:
            continue
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(item) for item in error.path)
            problems.append(f"{name}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{name}: {error.message}")
    return problems


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_manifest_is_valid_kubernetes(value_set: str, kube_version: str) -> None:
    manifests = render(VALUE_SETS[value_set], kube_version=kube_version)
    assert manifests
    assert validate_all(manifests, kube_version) == []


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_strict_lint_finds_nothing(value_set: str) -> None:
    report = helm.lint(CHART_DIR, VALUE_SETS[value_set], strict=True, namespace="profiles")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert problems == []


def test_newest_kubernetes_gets_the_gateway_pause_before_stopping() -> None:
    def pre_stop(kube_version: str) -> Any:
        manifests = render(VALUE_SETS["defaults"], kube_version=kube_version)
        envoy = find(manifests, "Deployment", f"{PREFIX}-gateway")["spec"]["template"]["spec"]
        return envoy["containers"][0].get("lifecycle")

    # The sleep action exists from Kubernetes 1.30; 1.29 would refuse the manifest.
    assert pre_stop(OLDEST_KUBE) is None
    assert pre_stop(NEWEST_KUBE) == {"preStop": {"sleep": {"seconds": 5}}}


def test_defaults_make_the_components_the_issue_lists() -> None:
    manifests = render(VALUE_SETS["defaults"])
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for kind, name in [
        ("Deployment", f"{PREFIX}-extender"),
        ("Deployment", f"{PREFIX}-notifier"),
        ("Deployment", f"{PREFIX}-gateway"),
        ("Deployment", f"{PREFIX}-differ"),
        ("Deployment", f"{PREFIX}-differ-sweeper-0"),
        ("ConfigMap", f"{PREFIX}-gateway"),
        ("Service", f"{PREFIX}-gateway"),
        ("Service", f"{PREFIX}-extender-headless"),
        ("PodDisruptionBudget", f"{PREFIX}-extender"),
        ("NetworkPolicy", f"{PREFIX}-differ-sweeper"),
        ("Pod", f"{PREFIX}-test"),
    ]:
        assert (kind, name) in kinds
    # Paced sweeps by default: no CronJob, so no Role to make Jobs from it.
    assert not of_kind(manifests, "CronJob")
    assert not of_kind(manifests, "Role")
    # Off by default: the emulator, autoscaling, ingress, the ServiceMonitor.
    assert not of_kind(manifests, "HorizontalPodAutoscaler")
    assert not of_kind(manifests, "Ingress")
    assert not of_kind(manifests, "ServiceMonitor")
    assert not [m for m in manifests if "graph-emulator" in m["metadata"]["name"]]


def test_the_packaged_chart_carries_its_generated_files(tmp_path: pathlib.Path) -> None:
    archive = helm.package(CHART_DIR, destination=tmp_path)
    with helm.Chart.load(archive) as chart:
        names = {f["name"] for f in chart.files}
        assert {"files/profilesync.pb", "files/envoy.yaml", "files/static/index.html"} <= names
        assert not {n for n in names if n.startswith("ci/") or n.endswith(".gitignore")}
        rendered = chart.render(VALUE_SETS["defaults"], name="rel", namespace="profiles")
    assert "binaryData" in rendered["profile-sync/templates/gateway-configmap.yaml"]
