"""The console's part of the gateway configuration: settings from the environment, the
routes Envoy serves the files with, and the optional route to the emulator's tokens."""

from __future__ import annotations

import datetime
import json
import pathlib
import re
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.common.settings import ConfigError, EnvReader
from services.console import STATIC_DIR, ConsoleSettings, EmulatorTokens, console_files
from services.console.routes import (
    CONTENT_TYPES,
    DEV_TOKEN_PATH,
    EMULATOR_CLUSTER,
    console_authorities,
)
from services.gateway.envoy_config import render_config
from services.gateway.envoy_process import default_envoy_path, validate_config
from services.gateway.settings import BACKEND_SERVICES, Backend, GatewaySettings

ROOT = pathlib.Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
BACKENDS = tuple(Backend(service, "127.0.0.1", 50051) for service in BACKEND_SERVICES)


def routes_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes: list[dict[str, Any]] = manager["typed_config"]["route_config"]["virtual_hosts"][0][
        "routes"
    ]
    return routes


def route_table(config: dict[str, Any]) -> dict[str, Any]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    table: dict[str, Any] = manager["typed_config"]["route_config"]
    return table


def self_signed_pem() -> bytes:
    """A CA certificate: Envoy loads the trusted CA file when it validates a config."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "console test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def gateway_env(**extra: str) -> EnvReader:
    return EnvReader(
        {
            "EXTENDER_ADDR": "127.0.0.1:1",
            "DIFFER_ADDR": "127.0.0.1:2",
            "NOTIFIER_ADDR": "127.0.0.1:3",
            "GATEWAY_DESCRIPTOR_SET": str(DESCRIPTOR_SET),
            **extra,
        }
    )


def test_the_gateway_serves_the_console_unless_told_not_to() -> None:
    assert GatewaySettings.from_env(gateway_env()).console == ConsoleSettings(root=STATIC_DIR)
    assert GatewaySettings.from_env(gateway_env(GATEWAY_CONSOLE_DIR="off")).console is None


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"GATEWAY_CONSOLE_DIR": "/nonexistent"}, "GATEWAY_CONSOLE_DIR: no index.html in"),
        ({"EMULATOR_URL": "ftp://127.0.0.1:1"}, "EMULATOR_URL must be an http(s) URL"),
        ({"EMULATOR_URL": "https://127.0.0.1:8443/v1.0"}, "the emulator's base URL"),
        ({"EMULATOR_URL": "https://127.0.0.1:8443"}, "EMULATOR_CA_FILE is required"),
        (
            {"EMULATOR_URL": "https://127.0.0.1:8443", "EMULATOR_CA_FILE": "/nonexistent.pem"},
            "EMULATOR_CA_FILE: no file at",
        ),
        ({"EMULATOR_URL": "http://127.0.0.1:99999"}, "EMULATOR_URL has an invalid port"),
    ],
)
def test_bad_console_settings_name_the_variable(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ConsoleSettings.from_env(EnvReader(env))
    assert problem in str(refused.value)


def test_the_bare_gateway_config_has_no_console() -> None:
    # What the Helm chart mirrors today: the console is added by from_env's settings.
    config = render_config(GatewaySettings(DESCRIPTOR_SET, BACKENDS))
    assert not any("console" in json.dumps(route["match"]) for route in routes_of(config))


def test_console_routes_come_first_and_serve_every_file_with_its_type() -> None:
    settings = GatewaySettings(DESCRIPTOR_SET, BACKENDS, console=ConsoleSettings())
    config = render_config(settings)
    routes = routes_of(config)
    first_rpc = next(index for index, route in enumerate(routes) if "route" in route)
    served = {
        route["match"]["path"]: route
        for route in routes[:first_rpc]
        if "direct_response" in route and route["direct_response"]["status"] == 200
    }
    for name, path in console_files(STATIC_DIR):
        route = served[f"/console/{name}"]
        assert route["direct_response"]["body"] == {"filename": str(path)}
        headers = {
            h["header"]["key"]: h["header"]["value"] for h in route["response_headers_to_add"]
        }
        assert headers["content-type"] == CONTENT_TYPES[path.suffix]
    assert served["/console/"]["direct_response"]["body"]["filename"].endswith("index.html")
    largest = max(path.stat().st_size for _, path in console_files(STATIC_DIR))
    assert route_table(config)["max_direct_response_body_size_bytes"] >= largest
    # No emulator configured: no token route, no emulator cluster, and the pages are told so.
    assert DEV_TOKEN_PATH not in json.dumps(routes)
    assert (
        json.loads(served["/console/config.json"]["direct_response"]["body"]["inline_string"]) == {}
    )


def test_envoy_accepts_the_config_with_the_emulator_token_route(tmp_path: pathlib.Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(self_signed_pem())
    emulator = EmulatorTokens("127.0.0.1", 8443, tls=True, ca_file=ca_file)
    settings = GatewaySettings(DESCRIPTOR_SET, BACKENDS, console=ConsoleSettings(emulator=emulator))
    config = render_config(settings)
    cluster = next(
        c for c in config["static_resources"]["clusters"] if c["name"] == EMULATOR_CLUSTER
    )
    validation = cluster["transport_socket"]["typed_config"]["common_tls_context"][
        "validation_context"
    ]
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}}
    ]
    token_routes = [r for r in routes_of(config) if r["match"].get("path") == DEV_TOKEN_PATH]
    forwards = [r for r in token_routes if "route" in r]
    assert {r["route"]["prefix_rewrite"] for r in forwards} == {"/_emulator/token"}
    assert {r["route"]["host_rewrite_literal"] for r in forwards} == {"127.0.0.1:8443"}
    # Everything the forwarding routes do not take is refused, not passed on.
    assert [r["direct_response"]["status"] for r in token_routes if "route" not in r] == [
        403,
        415,
        403,
    ]

    # The same-origin check runs on the token route alone, before the router.
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    chain = [f["name"] for f in manager["typed_config"]["http_filters"]]
    assert chain[-2:] == ["envoy.filters.http.lua", "envoy.filters.http.router"]
    assert manager["typed_config"]["http_filters"][-2]["disabled"] is True
    assert all("envoy.filters.http.lua" in r["typed_per_filter_config"] for r in forwards)

    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(config))
    validate_config(default_envoy_path(), path)


@pytest.mark.parametrize(
    ("host", "port", "accepted", "refused"),
    [
        (
            "127.0.0.1",
            8080,
            ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"],
            ["127.0.0.1:8081", "evil.example:8080", "127.0.0.1.evil.example:8080", "localhost"],
        ),
        # A port chosen at start: any port, still only the gateway's own names.
        ("127.0.0.1", 0, ["127.0.0.1:41234", "localhost:8080"], ["attacker.test:41234"]),
        ("10.1.2.3", 8080, ["10.1.2.3:8080", "localhost:8080"], ["10.1.2.4:8080"]),
        ("0.0.0.0", 8080, ["localhost:8080"], ["0.0.0.0:8080", "staging.example:8080"]),  # noqa: S104
    ],
)
def test_dev_tokens_go_only_to_the_gateways_own_names(
    host: str, port: int, accepted: list[str], refused: list[str]
) -> None:
    """A DNS-rebinding page reaches the gateway under the attacker's name, which its
    browser sends as Host: only the names the console itself is opened by pass."""
    patterns = [re.compile(pattern) for pattern in console_authorities(host, port)]
    for authority in accepted:
        assert any(p.fullmatch(authority) for p in patterns), authority
    for authority in refused:
        assert not any(p.fullmatch(authority) for p in patterns), authority


def test_console_folder_with_a_file_the_gateway_cannot_type_is_refused(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "notes.md").write_text("# notes")
    with pytest.raises(ValueError, match=r"notes\.md: no content type for '\.md' files"):
        console_files(tmp_path)
    (tmp_path / "notes.md").unlink()
    (tmp_path / "bad name.js").write_text("")
    with pytest.raises(ValueError, match="names may use only"):
        console_files(tmp_path)
