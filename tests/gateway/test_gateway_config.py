"""The rendered Envoy configuration: accepted by Envoy, and routing what it should."""

from __future__ import annotations

import json
import pathlib
import subprocess
from typing import Any

import pytest

from services.common.settings import ConfigError, EnvReader
from services.gateway.envoy_config import render_config
from services.gateway.envoy_process import default_envoy_path, validate_config
from services.gateway.settings import BACKEND_SERVICES, Backend, GatewaySettings, parse_address


def settings_for(descriptor_set: pathlib.Path, **overrides: Any) -> GatewaySettings:
    backends = tuple(
        Backend(service, "127.0.0.1" if i else "profile-extender.default.svc", 50051 + i)
        for i, service in enumerate(BACKEND_SERVICES)
    )
    return GatewaySettings(descriptor_set=descriptor_set, backends=backends, **overrides)


def routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    virtual_host = manager["typed_config"]["route_config"]["virtual_hosts"][0]
    return list(virtual_host["routes"])


def test_rendered_config_passes_envoy_validation(
    descriptor_set: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    config_path = tmp_path / "envoy.json"
    config_path.write_text(json.dumps(render_config(settings_for(descriptor_set, port=0))))
    validate_config(default_envoy_path(), config_path)


def test_envoy_rejects_a_broken_config(tmp_path: pathlib.Path) -> None:
    config_path = tmp_path / "envoy.json"
    config_path.write_text(json.dumps({"static_resources": {"clusters": [{"name": 1}]}}))
    result = subprocess.run(
        [default_envoy_path(), "--mode", "validate", "-c", str(config_path)],
        capture_output=True,
        check=False,
    )
    assert result.returncode != 0


def test_only_methods_with_http_rules_are_routed(descriptor_set: pathlib.Path) -> None:
    paths = [r["match"].get("path") for r in routes(render_config(settings_for(descriptor_set)))]
    assert "/profilesync.v1.ProfileExtender/GetProfile" in paths
    assert "/profilesync.v1.LobNotifier/StreamChanges" in paths
    # Internal RPCs stay off the public gateway.
    assert "/profilesync.v1.LobNotifier/Publish" not in paths
    assert "/profilesync.v1.ProfileExtender/ListProfiles" not in paths


def test_stream_routes_never_time_out(descriptor_set: pathlib.Path) -> None:
    by_path = {
        r["match"].get("path"): r for r in routes(render_config(settings_for(descriptor_set)))
    }
    stream = by_path["/profilesync.v1.LobNotifier/StreamChanges"]["route"]
    assert stream["timeout"] == "0s"
    assert stream["idle_timeout"] == "3600s"
    assert by_path["/profilesync.v1.LobNotifier/ListChanges"]["route"]["timeout"] != "0s"


def test_dns_names_and_ip_addresses_get_matching_discovery(descriptor_set: pathlib.Path) -> None:
    clusters = render_config(settings_for(descriptor_set))["static_resources"]["clusters"]
    assert {c["name"]: c["type"] for c in clusters} == {
        "ProfileExtender": "STRICT_DNS",
        "SnapshotDiffer": "STATIC",
        "LobNotifier": "STATIC",
    }


def test_access_log_leaves_out_authorization(descriptor_set: pathlib.Path) -> None:
    assert "authorization" not in json.dumps(render_config(settings_for(descriptor_set))).lower()


@pytest.mark.parametrize("value", ["localhost", "host:", ":80", "host:0", "host:70000", "h:x"])
def test_malformed_backend_address_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="EXTENDER_ADDR"):
        parse_address("EXTENDER_ADDR", value)


def test_ipv6_backend_address() -> None:
    assert parse_address("DIFFER_ADDR", "[::1]:50052") == ("::1", 50052)


def test_settings_from_env(descriptor_set: pathlib.Path) -> None:
    settings = GatewaySettings.from_env(
        EnvReader(
            {
                "EXTENDER_ADDR": "127.0.0.1:1",
                "DIFFER_ADDR": "127.0.0.1:2",
                "NOTIFIER_ADDR": "notifier:3",
                "GATEWAY_PORT": "0",
                "GATEWAY_DESCRIPTOR_SET": str(descriptor_set),
            }
        )
    )
    assert settings.port == 0
    assert settings.host == "127.0.0.1"
    assert settings.descriptor_set.is_absolute()
    assert settings.backends[2] == Backend("profilesync.v1.LobNotifier", "notifier", 3)


def test_missing_descriptor_set_is_a_config_error(tmp_path: pathlib.Path) -> None:
    environ = {
        "EXTENDER_ADDR": "127.0.0.1:1",
        "DIFFER_ADDR": "127.0.0.1:2",
        "NOTIFIER_ADDR": "127.0.0.1:3",
        "GATEWAY_DESCRIPTOR_SET": str(tmp_path / "missing.pb"),
    }
    with pytest.raises(ConfigError, match="GATEWAY_DESCRIPTOR_SET"):
        GatewaySettings.from_env(EnvReader(environ))
