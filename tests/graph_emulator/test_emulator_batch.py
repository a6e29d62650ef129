"""JSON batching, as documented in "Combine multiple HTTP requests using JSON batching":
https://learn.microsoft.com/en-us/graph/json-batching
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from emulator_helpers import assert_graph_error, bearer, first_user, mint, nth_user

from devtools.graph_emulator.defaults import GRAPH_RESOURCE
from devtools.graph_emulator.state import EmulatorState

SELECT = "$select=id,aboutMe,skills,pastProjects,schools,interests"


def get_items(state: EmulatorState, count: int) -> list[dict[str, Any]]:
    users = state.store.page_after(None, count)[0]
    return [
        {"id": str(i + 1), "method": "GET", "url": f"/users/{u['id']}?{SELECT}"}
        for i, u in enumerate(users)
    ]


async def test_batch_of_twenty(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """Up to 20 requests; answers in any order, each with id, status, headers and body.
    https://learn.microsoft.com/en-us/graph/json-batching#processing-the-json-batch-response
    """
    items = get_items(state, 20)
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=app_headers)
    assert response.status_code == 200, response.text
    responses = response.json()["responses"]
    assert sorted(r["id"] for r in responses) == sorted(i["id"] for i in items)
    by_id = {r["id"]: r for r in responses}
    for item in items:
        answer = by_id[item["id"]]
        assert answer["status"] == 200
        user_id = item["url"].split("/")[2].split("?")[0]
        assert answer["body"]["id"] == user_id
        assert answer["body"]["skills"] == state.store.resolve(user_id)["skills"]  # type: ignore[index]
        assert answer["headers"]["Content-Type"].startswith("application/json")
    # Answers come in a shuffled but reproducible order.
    assert [r["id"] for r in responses] != [i["id"] for i in items]
    stats = (await client.get("/_emulator/stats")).json()
    assert stats["batchItems"] == 20 and stats["resourceUnits"] == 20


async def test_batch_order_is_deterministic(signing_key: Any) -> None:
    from devtools.graph_emulator.app import create_app

    orders = []
    for _ in range(2):
        state = EmulatorState.build(users=30, seed=7, signing_key=signing_key)
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as http:
            token = await mint(http, roles=["User.Read.All"], audience=GRAPH_RESOURCE)
            body = {"requests": get_items(state, 10)}
            answer = await http.post("/v1.0/$batch", json=body, headers=bearer(token))
            orders.append([r["id"] for r in answer.json()["responses"]])
    assert orders[0] == orders[1]


async def test_batch_items_fail_individually(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """A parseable batch answers 200; each item carries its own status.
    https://learn.microsoft.com/en-us/graph/json-batching#processing-the-json-batch-response
    """
    items = [
        {"id": "ok", "method": "GET", "url": f"/users/{first_user(state)['id']}"},
        {"id": "missing", "method": "GET", "url": "/users/nobody"},
        {"id": "list", "method": "GET", "url": "users?$select=skills"},
        {"id": "absolute", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"},
        {"id": "route", "method": "GET", "url": "/groups"},
        {
            "id": "nested",
            "method": "POST",
            "url": "/$batch",
            "body": {},
            "headers": {"Content-Type": "application/json"},
        },
        {
            "id": "denied",
            "method": "PATCH",
            "url": f"/users/{first_user(state)['id']}",
            "body": {"skills": ["x"]},
            "headers": {"Content-Type": "application/json"},
        },
        {"id": "dependent", "method": "GET", "url": "/users?$top=1", "dependsOn": ["missing"]},
    ]
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=app_headers)
    assert response.status_code == 200
    status = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert status == {
        "ok": 200,
        "missing": 404,
        "list": 501,
        "absolute": 400,
        "route": 404,
        "nested": 400,
        "denied": 403,
        "dependent": 424,
    }
    missing = next(r for r in response.json()["responses"] if r["id"] == "missing")
    assert missing["body"]["error"]["code"] == "Request_ResourceNotFound"


async def test_batch_patch_with_user_token(client: httpx.AsyncClient, state: EmulatorState) -> None:
    user = nth_user(state, 5)
    token = await mint(client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE)
    items = [
        {
            "id": "1",
            "method": "PATCH",
            "url": f"/users/{user['id']}",
            "headers": {"Content-Type": "application/json"},
            "body": {"interests": ["Chess"]},
        }
    ]
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=bearer(token))
    assert response.json()["responses"] == [
        {"id": "1", "status": 204, "headers": {"x-ms-resource-unit": "1"}}
    ]
    assert user["interests"] == ["Chess"]


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (
            {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]},
            "Request_BadRequest",
            "20",
        ),
        (
            {
                "requests": [
                    {"id": "a", "method": "GET", "url": "/users"},
                    {"id": "A", "method": "GET", "url": "/users"},
                ]
            },
            "BadRequest",
            "has to be unique",
        ),
        (
            {"requests": [{"id": "1", "method": "PATCH", "url": "/me", "body": {}}]},
            "BadRequest",
            "Content-Type",
        ),
        (
            {
                "requests": [
                    {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]},
                    {"id": "2", "method": "GET", "url": "/users"},
                ]
            },
            "BadRequest",
            "not in the batch",
        ),
        (
            {
                "requests": [
                    {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
                    {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]},
                ]
            },
            "BadRequest",
            "cycle",
        ),
        (
            {"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": "2"}]},
            "BadRequest",
            "dependsOn",
        ),
        (
            {"requests": [{"id": "1", "method": "GET", "url": "/me", "body": {"a": 1}}]},
            "BadRequest",
            "Content-Type",
        ),
        (
            {
                "requests": [
                    {
                        "id": "1",
                        "method": "PATCH",
                        "url": "/me",
                        "headers": {"Content-Type": "application/json"},
                    }
                ]
            },
            "BadRequest",
            "Content-Type header or body",
        ),
        ({"requests": []}, "BadRequest", "at least one"),
        ({"requests": "nope"}, "BadRequest", "Invalid batch payload"),
        (
            {"requests": [{"id": 1, "method": "GET", "url": "/users"}]},
            "BadRequest",
            "Invalid batch payload",
        ),
        (
            {"requests": [{"id": "1", "method": "TRACE", "url": "/users"}]},
            "BadRequest",
            "Invalid batch payload",
        ),
        (
            {"requests": [{"id": "1", "method": "GET", "url": "/users", "headers": [1]}]},
            "BadRequest",
            "Invalid batch payload",
        ),
        ([1, 2], "BadRequest", "Invalid batch payload"),
    ],
)
async def test_batch_validation(
    client: httpx.AsyncClient, app_headers: dict[str, str], body: object, code: str, fragment: str
) -> None:
    """A malformed batch (over 20 items, duplicate ids, bad dependsOn, a body without
    Content-Type) fails as a whole with 400.
    https://learn.microsoft.com/en-us/graph/json-batching#creating-a-batch-request
    """
    response = await client.post("/v1.0/$batch", json=body, headers=app_headers)
    assert_graph_error(response, 400, code)
    assert fragment in response.json()["error"]["message"]


async def test_batch_bad_json(client: httpx.AsyncClient, app_headers: dict[str, str]) -> None:
    response = await client.post("/v1.0/$batch", content=b"{{", headers=app_headers)
    assert_graph_error(response, 400)
    assert_graph_error(await client.get("/v1.0/$batch", headers=app_headers), 405)


async def test_batch_items_are_throttled_and_failed_individually(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """Items are evaluated against the throttling limits one by one; one over the limit
    fails with 429 and its own Retry-After, and is charged like any request ("all requests
    accrue against your usage limits").
    https://learn.microsoft.com/en-us/graph/json-batching#batch-size-limitations
    https://learn.microsoft.com/en-us/graph/throttling
    """
    await client.put("/_emulator/config", json={"quotaPer10s": 5})
    response = await client.post(
        "/v1.0/$batch", json={"requests": get_items(state, 20)}, headers=app_headers
    )
    statuses = sorted(r["status"] for r in response.json()["responses"])
    assert statuses == [200] * 5 + [429] * 15
    throttled = next(r for r in response.json()["responses"] if r["status"] == 429)
    # More refused than the whole quota: come back after a full window.
    assert 0 < float(throttled["headers"]["Retry-After"]) <= 10.1
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    assert all(
        float(r["headers"]["Retry-After"]) > 0
        for r in response.json()["responses"]
        if r["status"] == 429
    )
    single = await client.get("/v1.0/users", headers=app_headers)
    assert_graph_error(single, 429, "TooManyRequests")
    assert float(single.headers["Retry-After"]) > 0
    charged = (await client.get("/_emulator/stats")).json()
    # 15 refused items of 1 unit and the refused list of 2 units are charged too.
    assert (charged["resourceUnits"], charged["throttledResourceUnits"]) == (5, 17)

    await client.put(
        "/_emulator/config",
        json={"quotaPer10s": 5000, "failureRate": 1.0, "failureStatuses": [503]},
    )
    response = await client.post(
        "/v1.0/$batch", json={"requests": get_items(state, 4)}, headers=app_headers
    )
    for answer in response.json()["responses"]:
        assert answer["status"] == 503 and float(answer["headers"]["Retry-After"]) > 0
    stats = (await client.get("/_emulator/stats")).json()
    assert stats["throttled"] == 16 and stats["injectedFailures"] == 4


async def test_depends_on_orders_execution_and_fails_dependants(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    """dependsOn sequences requests, whatever their place in the list; a request whose
    dependency failed answers 424 Failed Dependency, and so do its own dependants.
    https://learn.microsoft.com/en-us/graph/json-batching#sequencing-requests-with-the-dependson-property
    """
    user = nth_user(state, 2)
    token = await mint(client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE)
    patch = {"Content-Type": "application/json"}
    items = [
        # Listed first, but runs after the PATCH it depends on, so it sees the new value.
        {"id": "read", "method": "GET", "url": "/me?$select=skills", "dependsOn": ["write"]},
        {
            "id": "write",
            "method": "PATCH",
            "url": "/me",
            "headers": patch,
            "body": {"skills": ["Sequencing"]},
        },
        {"id": "missing", "method": "GET", "url": "/users/nobody"},
        {"id": "after-missing", "method": "GET", "url": "/me", "dependsOn": ["MISSING"]},
        {"id": "chained", "method": "GET", "url": "/me", "dependsOn": ["after-missing"]},
    ]
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=bearer(token))
    assert response.status_code == 200
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["write"]["status"] == 204
    assert answers["read"]["status"] == 200
    assert answers["read"]["body"]["skills"] == ["Sequencing"]
    assert answers["missing"]["status"] == 404
    for name in ("after-missing", "chained"):
        assert answers[name]["status"] == 424
        assert answers[name]["body"]["error"]["code"] == "FailedDependency"


async def test_item_bodies_follow_their_content_type(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    """A JSON Content-Type carries a JSON body; any other carries a base64 string.
    https://learn.microsoft.com/en-us/graph/json-batching#creating-a-batch-request
    """
    user = nth_user(state, 4)
    token = await mint(client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE)
    encoded = base64.b64encode(b'{"interests": ["Base64"]}').decode()
    items = [
        {
            "id": "encoded",
            "method": "PATCH",
            "url": "/me",
            "headers": {"Content-Type": "application/octet-stream"},
            "body": encoded,
        },
        {
            "id": "not-base64",
            "method": "PATCH",
            "url": "/me",
            "headers": {"content-type": "text/plain"},
            "body": {"interests": ["x"]},
        },
    ]
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=bearer(token))
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["encoded"]["status"] == 204
    assert user["interests"] == ["Base64"]
    assert answers["not-base64"]["status"] == 400
    assert "base64" in answers["not-base64"]["body"]["error"]["message"]


async def test_item_headers_reach_the_operation(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """Headers such as ConsistencyLevel go in the item's headers object.
    https://learn.microsoft.com/en-us/graph/aad-advanced-queries
    """
    items = [
        {
            "id": "count",
            "method": "GET",
            "url": "/users?$count=true&$top=1&$select=id",
            "headers": {"ConsistencyLevel": "eventual"},
        },
        {"id": "no-header", "method": "GET", "url": "/users?$count=true&$top=1&$select=id"},
    ]
    response = await client.post("/v1.0/$batch", json={"requests": items}, headers=app_headers)
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["count"]["body"]["@odata.count"] == len(state.store)
    assert "@odata.count" not in answers["no-header"]["body"]
    assert answers["count"]["headers"]["x-ms-resource-unit"] == "1"


async def test_a_request_may_depend_on_only_one_other(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """ "Currently, requests can only depend on a single other request": a batch with an item
    that names two dependencies is refused as a whole (400 naming the item), while the same
    requests chained one after the other run.
    https://learn.microsoft.com/en-us/graph/known-issues#json-batching
    """
    items = get_items(state, 3)
    two = [items[0], items[1], {**items[2], "dependsOn": ["1", "2"]}]
    response = await client.post("/v1.0/$batch", json={"requests": two}, headers=app_headers)
    assert_graph_error(response, 400, "BadRequest")
    message = response.json()["error"]["message"]
    assert "Request 3 depends on 2 requests" in message and "only one" in message
    chained = [items[0], {**items[1], "dependsOn": ["1"]}, {**items[2], "dependsOn": ["2"]}]
    response = await client.post("/v1.0/$batch", json={"requests": chained}, headers=app_headers)
    assert [r["status"] for r in response.json()["responses"]] == [200] * 3
