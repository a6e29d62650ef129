"""Requests gRPC would answer with a 500 are refused at the gateway, by name."""

from __future__ import annotations

import json
import pathlib
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.common.settings import EnvReader
from services.gateway.envoy_config import render_config
from services.gateway.settings import GatewaySettings


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 3
    message: str = body["message"]
    return message


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("+", "header '+': a header name may contain only"),
        ("x*y", "header 'x*y'"),
        ("grpc-timeout", "header 'grpc-timeout': grpc- headers are reserved"),
        ("x-token-bin", "header 'x-token-bin': -bin headers are reserved"),
    ],
)
def test_headers_grpc_cannot_carry_are_refused_by_name(
    client: httpx.Client, header: str, fragment: str
) -> None:
    response = client.get("/v1/profiles/u1", headers={header: "abc"})
    assert fragment in refusal(response)


def test_ordinary_headers_pass(client: httpx.Client) -> None:
    response = client.get(
        "/v1/profiles/u1", headers={"x-correlation-id": "a.b_c-1", "accept-language": "fr"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("/v1/profiles/%FF%FE", "the request path"),
        ("/v1/profiles/%C3%28", "the request path"),
        ("/v1/profiles/%ED%A0%80", "the request path"),  # a UTF-16 surrogate
        ("/v1/profiles/%C0%AF", "the request path"),  # an overlong '/'
        ("/v1/changes?afterCursor=%FF", "the query string"),
    ],
)
def test_urls_that_are_not_utf8_are_refused(client: httpx.Client, url: str, where: str) -> None:
    assert refusal(client.get(url)) == f"{where} is not valid UTF-8 once percent-decoded"


def test_utf8_urls_reach_the_service(client: httpx.Client) -> None:
    # The backend's validator answers: the guard let it through.
    response = client.get("/v1/profiles/caf%C3%A9%F0%9F%98%80")
    assert response.status_code == 400
    assert response.json()["message"].startswith("id: ")


def nested(depth: int, *, objects: bool = False) -> str:
    inner = '{"a":' * depth + "1" + "}" * depth if objects else "[" * depth + "]" * depth
    return '{"ids": ["u1"], "extra": ' + inner + "}"


@pytest.mark.parametrize("objects", [False, True])
def test_json_nested_past_the_limit_is_refused(client: httpx.Client, objects: bool) -> None:
    headers = {"content-type": "application/json"}
    deep = client.post(
        "/v1/profiles:batchGet", content=nested(20, objects=objects), headers=headers
    )
    assert refusal(deep) == "the JSON body nests deeper than 20 levels"
    # One level less (the outer object counts) gets past the guard to the service.
    shallow = client.post(
        "/v1/profiles:batchGet", content=nested(19, objects=objects), headers=headers
    )
    assert "nests deeper" not in shallow.text


def test_brackets_inside_strings_do_not_count(client: httpx.Client) -> None:
    body = json.dumps(
        {"ids": ["u1"], "note": '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \\" {{{{{{{{{{{{{{{{{{{{{{'}
    )
    response = client.post(
        "/v1/profiles:batchGet", content=body, headers={"content-type": "application/json"}
    )
    assert "nests deeper" not in response.text


def raw_request(base_url: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """Sends bytes no HTTP client library would, and reads the status and JSON body."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_malformed_http_gets_a_message(client: httpx.Client) -> None:
    base = str(client.base_url)
    status, body = raw_request(
        base, b"GET /v1/profiles/u1 HTTP/1.1\r\nHost: x\r\nx-a: a\x01b\r\n\r\n"
    )
    assert status == 400
    assert body["message"].startswith("malformed HTTP request (")
    status, body = raw_request(
        base, b"QUERY /v1/syncs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert (status, body["message"]) == (400, "HTTP method QUERY is not supported")


def test_oversized_body_names_the_limit(client: httpx.Client) -> None:
    response = client.post(
        "/v1/profiles:batchGet",
        content=b"[" + b" " * (1024 * 1024) + b"]",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["message"] == (
        "the request body is larger than 1048576 bytes, the most this gateway accepts"
    )


def test_guard_can_be_turned_off(descriptor_set: pathlib.Path) -> None:
    environ = {
        "EXTENDER_ADDR": "127.0.0.1:1",
        "DIFFER_ADDR": "127.0.0.1:2",
        "NOTIFIER_ADDR": "127.0.0.1:3",
        "GATEWAY_DESCRIPTOR_SET": str(descriptor_set),
    }
    on = GatewaySettings.from_env(EnvReader(environ))
    off = GatewaySettings.from_env(EnvReader({**environ, "GATEWAY_REQUEST_GUARD": "false"}))
    assert on.request_guard and not off.request_guard

    def filters(settings: GatewaySettings) -> list[str]:
        manager = render_config(settings)["static_resources"]["listeners"][0]
        typed = manager["filter_chains"][0]["filters"][0]["typed_config"]
        return [f["name"] for f in typed["http_filters"]]

    assert "envoy.filters.http.lua" in filters(on)
    assert "envoy.filters.http.lua" not in filters(off)
