"""The gateway serves the OpenAPI document at /openapi.json, to anyone, from the file."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import httpx
import pytest

from services.common.settings import ConfigError, EnvReader
from services.gateway.envoy_config import OPENAPI_PATH, render_config
from services.gateway.envoy_process import default_envoy_path, validate_config
from services.gateway.openapi import DEFAULT_OUTPUT
from services.gateway.settings import BACKEND_SERVICES, Backend, GatewaySettings

BACKENDS = tuple(Backend(service, "127.0.0.1", 50051) for service in BACKEND_SERVICES)


def route_config(settings: GatewaySettings) -> dict[str, Any]:
    manager = render_config(settings)["static_resources"]["listeners"][0]["filter_chains"][0]
    config: dict[str, Any] = manager["filters"][0]["typed_config"]["route_config"]
    return config


def env(descriptor_set: pathlib.Path, **extra: str) -> EnvReader:
    return EnvReader(
        {
            "EXTENDER_ADDR": "127.0.0.1:1",
            "DIFFER_ADDR": "127.0.0.1:2",
            "NOTIFIER_ADDR": "127.0.0.1:3",
            "GATEWAY_DESCRIPTOR_SET": str(descriptor_set),
            **extra,
        }
    )


def test_document_is_served_without_a_token(client: httpx.Client) -> None:
    response = client.get(OPENAPI_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    # The committed file, byte for byte: far over Envoy's default 4 KiB limit.
    assert response.content == DEFAULT_OUTPUT.read_bytes()
    assert len(response.content) > 4096
    assert response.json()["paths"]["/v1/profiles/{id}"]["get"]["operationId"] == "GetProfile"


def test_only_get_and_head_read_the_document(client: httpx.Client) -> None:
    assert client.head(OPENAPI_PATH).status_code == 200
    refused = client.post(OPENAPI_PATH, json={})
    assert refused.status_code == 404
    assert refused.json()["code"] == 5


def test_route_allows_a_body_the_size_of_the_file(descriptor_set: pathlib.Path) -> None:
    settings = GatewaySettings(descriptor_set, BACKENDS, openapi_file=DEFAULT_OUTPUT)
    config = route_config(settings)
    assert config["max_direct_response_body_size_bytes"] >= DEFAULT_OUTPUT.stat().st_size
    served = next(
        r for r in config["virtual_hosts"][0]["routes"] if r["match"].get("path") == "/openapi.json"
    )
    assert served["direct_response"]["body"] == {"filename": str(DEFAULT_OUTPUT)}


def test_envoy_accepts_the_config_with_the_document(
    descriptor_set: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    settings = GatewaySettings(descriptor_set, BACKENDS, port=0, openapi_file=DEFAULT_OUTPUT)
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(render_config(settings)))
    validate_config(default_envoy_path(), path)


def test_settings_serve_the_repository_document_by_default(descriptor_set: pathlib.Path) -> None:
    settings = GatewaySettings.from_env(env(descriptor_set))
    assert settings.openapi_file == DEFAULT_OUTPUT


def test_document_can_be_turned_off(descriptor_set: pathlib.Path) -> None:
    # The console off too: its files also need the raised body limit.
    settings = GatewaySettings.from_env(
        env(descriptor_set, GATEWAY_OPENAPI_FILE="off", GATEWAY_CONSOLE_DIR="off")
    )
    assert settings.openapi_file is None
    config = route_config(settings)
    assert "max_direct_response_body_size_bytes" not in config
    paths = [r["match"].get("path") for r in config["virtual_hosts"][0]["routes"]]
    assert OPENAPI_PATH not in paths


def test_a_missing_document_names_the_variable(
    descriptor_set: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_OPENAPI_FILE"):
        GatewaySettings.from_env(
            env(descriptor_set, GATEWAY_OPENAPI_FILE=str(tmp_path / "missing.json"))
        )
