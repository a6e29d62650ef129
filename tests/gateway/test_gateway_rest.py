"""REST calls through a real Envoy to a real gRPC backend."""

from __future__ import annotations

import json
import time

import grpc
import httpx
from gateway_harness import STREAMED_EVENTS

from devtools.processes import ManagedProcess
from profilesync.v1 import notifier_pb2, notifier_pb2_grpc


def test_get_profile_answers_lower_camel_case_json(client: httpx.Client) -> None:
    response = client.get("/v1/profiles/u1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["userPrincipalName"] == "u1@contoso.example"
    assert body["aboutMe"] == "Retail manager"
    assert body["skills"] == ["retail", "forecasting"]
    # Empty values are printed, not left out.
    assert body["pastProjects"] == []
    assert body["schools"] == []
    assert body["interests"] == []
    assert body["mail"] == ""
    assert body["fetchTime"] == "2023-11-14T22:13:20Z"


def test_unknown_profile_is_404_with_the_reason(client: httpx.Client) -> None:
    response = client.get("/v1/profiles/u2")
    assert response.status_code == 404
    assert response.json() == {"code": 5, "message": "no user u2", "details": []}


def test_malformed_id_is_400_naming_the_field(client: httpx.Client) -> None:
    response = client.get("/v1/profiles/bad%20id")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3
    assert body["message"].startswith("id: ")


def test_unknown_route_is_404_json(client: httpx.Client) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == 5
    assert client.delete("/v1/profiles/u1").status_code == 404


def test_unknown_query_parameter_is_400(client: httpx.Client) -> None:
    response = client.get("/v1/changes", params={"pageSize": 1, "bogus": "1"})
    assert response.status_code == 400
    assert "bogus" in response.json()["message"]


def test_malformed_json_body_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/v1/profiles:batchGet",
        content=b'{"ids": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == 3


def test_oversized_body_is_413(client: httpx.Client) -> None:
    response = client.post(
        "/v1/profiles:batchGet",
        content=json.dumps({"ids": ["x" * (2 * 1024 * 1024)]}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == 3


def test_list_changes_accepts_camel_case_parameters(client: httpx.Client) -> None:
    response = client.get("/v1/changes", params={"pageSize": 1})
    assert response.status_code == 200
    body = response.json()
    assert [event["eventId"] for event in body["events"]] == ["event-0"]
    assert body["nextCursor"] == "1700000000000-0"


def test_page_size_over_the_limit_is_400(client: httpx.Client) -> None:
    response = client.get("/v1/changes", params={"pageSize": 5000})
    assert response.status_code == 400
    assert response.json()["message"].startswith("pageSize: ")


def test_change_stream_is_newline_delimited_json(client: httpx.Client) -> None:
    with client.stream("GET", "/v1/changes:stream", params={"afterCursor": "1-1"}) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    events = [json.loads(line) for line in lines]
    assert [event["eventId"] for event in events] == [f"event-{i}" for i in range(STREAMED_EVENTS)]
    assert all(event["kind"] == "UPDATED" and event["origin"] == "SHAREPOINT" for event in events)


def test_healthz(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


def test_internal_rpcs_are_not_reachable_over_grpc(gateway: ManagedProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{gateway.ready['port']}") as channel:
        stub = notifier_pb2_grpc.LobNotifierStub(channel)
        try:
            stub.Publish(notifier_pb2.PublishRequest(), timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        else:
            raise AssertionError("Publish went through the gateway")


def test_stream_refused_before_the_first_event_is_a_json_error(client: httpx.Client) -> None:
    response = client.get("/v1/changes:stream", params={"afterCursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("afterCursor: ")


def test_patch_body_is_transcoded_whole(client: httpx.Client) -> None:
    # The test backend does not implement UpdateProfile: reaching it proves the route.
    # The body travels whole (as a Struct), so even unknown keys reach the
    # extender, which refuses them by name instead of the gateway dropping them.
    response = client.patch("/v1/profiles/u1", json={"aboutMe": "hi", "skilz": ["a"], "id": "u2"})
    assert response.status_code == 501
    assert response.json()["code"] == 12
    not_json = client.patch(
        "/v1/profiles/u1", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400


def test_access_log_is_json_without_the_token(
    client: httpx.Client, gateway: ManagedProcess
) -> None:
    response = client.get("/v1/profiles/u1", headers={"authorization": "Bearer secret-token-value"})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 10
    entry = None
    while entry is None and time.monotonic() < deadline:
        for line in gateway.log_path.read_text().splitlines():
            if request_id in line:
                entry = json.loads(line)
        time.sleep(0.1)
    assert entry is not None, "no access log line for the request"
    assert entry["path"] == "/v1/profiles/u1"
    assert entry["method"] == "GET"
    assert entry["grpcMethod"] == "/profilesync.v1.ProfileExtender/GetProfile"
    assert entry["status"] == 200
    assert "secret-token-value" not in gateway.log_path.read_text()
