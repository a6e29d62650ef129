"""Rendering the Helm chart offline for the chart tests.

    manifests = render(VALUE_SETS["defaults"], kube_version="v1.29.0")
    deployment = find(manifests, "Deployment", "rel-profile-sync-extender")

helm-python-sdk renders and lints without a helm binary or a cluster. Its `Chart.render`
does not expose the Kubernetes version or the API versions the templates see
(`.Capabilities`), which the library's C interface accepts; `render` passes them through.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
CHART_DIR = ROOT / "charts" / "profile-sync"
# The staging-only Graph emulator's own chart, installed beside profile-sync as "graph-emulator".
EMULATOR_CHART_DIR = ROOT / "charts" / "graph-emulator"
EMULATOR_RELEASE = "graph-emulator"
RELEASE = "rel"
NAMESPACE = "profiles"
PREFIX = f"{RELEASE}-profile-sync"

# Kubernetes versions the manifests must be valid for: the oldest the chart supports
# (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
OLDEST_KUBE = "1.29.0"

TENANT_ID = "0b5c5a3e-8d3f-4c6e-9a51-1f2e3d4c5b6a"
CLIENT_ID = "6f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b"

# The smallest production install: everything else at its default.
MINIMAL: dict[str, Any] = {
    "azure": {"tenantId": TENANT_ID, "clientId": CLIENT_ID, "existingSecret": "profile-sync-entra"},
    "redis": {"url": "rediss://master.profiles.abc123.euw1.cache.amazonaws.com:6379/0"},
    "differ": {
        "snapshotStore": "s3://contoso-profile-sync/snapshots",
        "s3": {"region": "eu-west-1"},
        "serviceAccount": {"roleArn": "arn:aws:iam::123456789012:role/profile-sync-snapshots"},
    },
}


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in, key by key (as helm merges -f files)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# The value sets every check runs against.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": MINIMAL,
    # The CronJob, sharded as an Indexed Job.
    "shards": merged(
        MINIMAL,
        {
            "differ": {
                "mode": "cronjob",
                "shards": 8,
                "parallelism": 4,
                "s3": {"sse": "aws:kms", "kmsKeyId": "alias/profile-sync"},
            }
        },
    ),
    # Paced sweepers (the default mode), one per shard.
    "sweeper-shards": merged(MINIMAL, {"differ": {"shards": 3, "intervalSeconds": 300}}),
    "emulator": {
        "graphEmulator": {"enabled": True},
        "redis": {"url": "redis://redis-master:6379/0", "allowInsecure": True},
        "networkPolicy": {"allowExternal": False, "allowExternalEgress": False},
    },
    "existing-secrets": merged(
        MINIMAL,
        {
            "redis": {"url": "", "existingSecret": "elasticache", "existingSecretKey": "url"},
            "notifier": {
                "existingSubscribersSecret": "webhooks",
                "existingSubscribersSecretKey": "subscribers.json",
            },
            "image": {
                "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "digest": "sha256:" + "a" * 64,
            },
        },
    ),
    "everything-on": merged(
        MINIMAL,
        {
            "extender": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 8}},
            "notifier": {
                "autoscaling": {"enabled": True},
                "dedupeTtlSeconds": 1209600,
                "webhooks": {"caBundleConfigMap": "corporate-ca"},
                "subscribers": [
                    {
                        "name": "crm",
                        "url": "https://crm.example.com/hooks/profiles",
                        "secret": "s3cr3t-signing-key-0123456789",
                    }
                ],
            },
            "gateway": {
                "autoscaling": {"enabled": True},
                "service": {
                    "type": "LoadBalancer",
                    "annotations": {
                        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"
                    },
                    "loadBalancerSourceRanges": ["10.0.0.0/8"],
                },
                "ingress": {
                    "enabled": True,
                    "className": "alb",
                    "host": "profiles.example.com",
                    "tlsSecretName": "profiles-tls",
                },
            },
            "differ": {
                "server": {"pdb": {"enabled": True}},
                "s3": {
                    "endpointUrl": "https://bucket.vpce-0a1b2c3d.s3.eu-west-1.vpce.amazonaws.com"
                },
            },
            "metrics": {
                "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
                "grafanaDashboard": {"enabled": True},
            },
            "commonLabels": {"team": "identity"},
        },
    ),
    "differ-server-off": merged(
        MINIMAL,
        {"differ": {"server": {"enabled": False}}, "metrics": {"enabled": False}},
    ),
}


@functools.cache
def chart_script() -> Any:
    """scripts/chart_test.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "chart_test_script", ROOT / "scripts" / "chart_test.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_chart_files() -> None:
    """Copies the descriptor set and its routes into the chart, as `make chart-test` does."""
    if not (ROOT / "build" / "profilesync.pb").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py")], check=True)
    chart_script().prepare()


# The emulator chart's values beside VALUE_SETS["emulator"].
EMULATOR_VALUES: dict[str, Any] = {"users": 500, "extraArgs": ["--quota", "2000"]}


@functools.cache
def chart(directory: pathlib.Path = CHART_DIR) -> helm.Chart:
    return helm.Chart.load(directory)


def render_raw(
    values: dict[str, Any],
    *,
    kube_version: str = OLDEST_KUBE,
    api_versions: tuple[str, ...] = (),
    release: str = RELEASE,
    chart_dir: pathlib.Path = CHART_DIR,
) -> dict[str, str]:
    """Template path -> rendered text, exactly as `helm template` would print it."""
    values_json = json.dumps(values, sort_keys=True)
    return dict(_render_cached(values_json, kube_version, api_versions, release, chart_dir))


@functools.lru_cache(maxsize=64)
def _render_cached(
    values_json: str,
    kube_version: str,
    api_versions: tuple[str, ...],
    release: str,
    chart_dir: pathlib.Path,
) -> tuple[tuple[str, str], ...]:
    # The chart is rendered once per value set and version; each caller parses its own copy.
    options = {
        "name": release,
        "namespace": NAMESPACE,
        "is_install": True,
        "kube_version": f"v{kube_version}",
        "api_versions": list(api_versions),
        # Referencing a value that does not exist is an error, not an empty string.
        "strict": True,
    }
    rendered = _native.call_string(
        "helm_render", chart(chart_dir)._raw(), values_json, json.dumps(options)
    )
    result: dict[str, str] = json.loads(rendered)
    return tuple(sorted(result.items()))


def manifests_of(rendered: dict[str, str]) -> list[dict[str, Any]]:
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append(document)
    return objects


def render(values: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    """The Kubernetes objects the chart makes for `values` (NOTES.txt aside)."""
    return manifests_of(render_raw(values, **options))


def render_emulator(
    values: dict[str, Any] = EMULATOR_VALUES, **options: Any
) -> list[dict[str, Any]]:
    """The objects charts/graph-emulator makes, installed as the release "graph-emulator"."""
    return render(values, chart_dir=EMULATOR_CHART_DIR, release=EMULATOR_RELEASE, **options)


def find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    names = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)
    raise AssertionError(f"no {kind}/{name} among {names}")


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every object that makes pods."""
    for manifest in manifests:
        kind = manifest["kind"]
        label = f"{kind}/{manifest['metadata']['name']}"
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield label, manifest["spec"]["template"]["spec"]
        elif kind == "CronJob":
            yield label, manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield label, manifest["spec"]


def container_env(manifest: dict[str, Any], container: str | None = None) -> dict[str, Any]:
    """Name -> value (or valueFrom) of a workload's container environment."""
    spec = next(pod_specs([manifest]))[1]
    containers = spec["containers"]
    chosen = (
        containers[0]
        if container is None
        else next(c for c in containers if c["name"] == container)
    )
    return {
        entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in chosen.get("env", [])
    }
