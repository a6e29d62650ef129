"""Mistakes in the values stop the install with a message that names them."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import helm_python as helm
import pytest
from chart_harness import (
    CHART_DIR,
    MINIMAL,
    PREFIX,
    VALUE_SETS,
    container_env,
    find,
    merged,
    render,
)


def refusal(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    return str(caught.value)


def test_a_misspelled_value_is_refused_by_name() -> None:
    message = refusal(merged(MINIMAL, {"extender": {"replicas": 3}}))
    assert "additional properties 'replicas' not allowed" in message
    assert "/extender" in message


def test_a_misspelled_top_level_value_is_refused_by_name() -> None:
    message = refusal(merged(MINIMAL, {"redsi": {"url": "rediss://x:6379"}}))
    assert "additional properties 'redsi' not allowed" in message


def test_a_value_of_the_wrong_kind_is_refused() -> None:
    message = refusal(merged(MINIMAL, {"differ": {"shards": "eight"}}))
    assert "/differ/shards" in message
    message = refusal(merged(MINIMAL, {"gateway": {"logLevel": "verbose"}}))
    assert "/gateway/logLevel" in message and "warning" in message


def test_missing_required_values_are_all_listed_at_once() -> None:
    message = refusal({})
    assert "5 problem(s) to fix" in message
    for name in (
        "azure.tenantId is required",
        "azure.clientId is required",
        "azure.existingSecret is required",
        "redis.url or redis.existingSecret is required",
        "differ.snapshotStore is required",
    ):
        assert name in message


def test_one_missing_required_value_is_named() -> None:
    values = merged(MINIMAL, {"azure": {"existingSecret": ""}})
    message = refusal(values)
    assert "1 problem(s) to fix" in message
    assert "azure.existingSecret is required" in message
    assert "kubectl create secret generic" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"redis": {"url": "rediss://:hunter2@cache:6379/0"}}, "must not carry credentials"),
        ({"redis": {"url": "redis://cache:6379/0"}}, "uses redis:// (no TLS)"),
        ({"redis": {"existingSecret": "elasticache"}}, "set only one"),
        ({"differ": {"snapshotStore": "/var/snapshots"}}, "must be s3://bucket/prefix"),
        ({"differ": {"shards": 2, "parallelism": 4}}, "cannot exceed differ.shards"),
        ({"extender": {"terminationGracePeriodSeconds": 5}}, "must exceed shutdownGraceSeconds"),
        ({"gateway": {"ingress": {"enabled": True}}}, "gateway.ingress.host is required"),
        ({"extender": {"port": 9464}}, "is also metrics.port"),
        (
            {"notifier": {"subscribers": [{"name": "a", "url": "http://a/", "secret": "x" * 16}]}},
            "uses http://",
        ),
        (
            {
                "notifier": {
                    "subscribers": [
                        {"name": "a", "url": "https://a/", "secret": "x" * 16},
                        {"name": "a", "url": "https://b/", "secret": "y" * 16},
                    ]
                }
            },
            "used twice",
        ),
        ({"graphEmulator": {"enabled": True}}, "azure.tenantId: leave it empty"),
        (
            {"differ": {"intervalSeconds": 60, "lockTtlSeconds": 60}},
            "differ.intervalSeconds (60) must exceed differ.lockTtlSeconds (60)",
        ),
    ],
)
def test_a_misconfiguration_is_explained(override: dict[str, Any], expected: str) -> None:
    assert expected in refusal(merged(MINIMAL, override))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"mode": "daemon"}, "/differ/mode"),
        ({"intervalSeconds": 5}, "/differ/intervalSeconds"),
        ({"intervalSeconds": 8 * 24 * 3600}, "/differ/intervalSeconds"),
    ],
)
def test_a_sync_mode_or_interval_out_of_bounds_is_refused(
    override: dict[str, Any], expected: str
) -> None:
    assert expected in refusal(merged(MINIMAL, {"differ": override}))


def test_a_webhook_secret_too_short_to_sign_with_is_refused() -> None:
    subscriber = {"name": "crm", "url": "https://crm.example.com/", "secret": "short"}
    message = refusal(merged(MINIMAL, {"notifier": {"subscribers": [subscriber]}}))
    assert "/notifier/subscribers/0/secret" in message


def test_the_value_sets_render() -> None:
    for values in VALUE_SETS.values():
        assert render(values)


def test_a_chart_packaged_without_its_copied_files_says_how_to_make_them(
    tmp_path: pathlib.Path,
) -> None:
    # As checked out: the committed Envoy configuration, without the copies `prepare` makes.
    copy = tmp_path / "profile-sync"
    shutil.copytree(CHART_DIR, copy, ignore=shutil.ignore_patterns("*.pb", "static"))
    with helm.Chart.load(copy) as chart, pytest.raises(helm.HelmError) as caught:
        chart.render(MINIMAL, name="rel", namespace="profiles")
    for missing in ("files/profilesync.pb", "files/static/index.html", "files/static/openapi.json"):
        assert missing in str(caught.value)
    assert "missing from the chart" in str(caught.value)
    assert "make chart-test" in str(caught.value)


@pytest.mark.parametrize(
    ("cluster", "expected"), [(None, "auto"), (True, "true"), ("false", "false")]
)
def test_redis_cluster_mode_reaches_every_service_that_uses_redis(
    cluster: bool | str | None, expected: str
) -> None:
    """ElastiCache Serverless exists only in cluster mode: `redis.cluster` sets
    REDIS_CLUSTER for each service that talks to Redis (auto when left out)."""
    values = MINIMAL if cluster is None else merged(MINIMAL, {"redis": {"cluster": cluster}})
    manifests = render(values)
    for name in ("extender", "notifier", "differ"):
        workload = find(manifests, "Deployment", f"{PREFIX}-{name}")
        assert container_env(workload)["REDIS_CLUSTER"] == expected, name


def test_an_unknown_redis_cluster_mode_is_refused_by_name() -> None:
    message = refusal(merged(MINIMAL, {"redis": {"cluster": "yes"}}))
    assert "/redis/cluster" in message
