"""``POST /$batch``: up to 20 operations, each answered on its own (Graph's JSON batching).

    result = run_batch(state, call, run_item)   # 200 with {"responses": [...]}, or a 400

Items go through the same per-call function as top-level requests (failure injection,
throttling, handlers), so a single item can answer 429 or 503 while the batch returns 200.
Items run in an order that honours ``dependsOn`` (one dependency per item at most, as in
Graph); an item whose dependency failed answers 424 without running. Answers come back in a
shuffled (seeded) order, as Graph promises no order: clients must match them by id. The
batch answers when its slowest item is done (see ``GraphResult.delay``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable
from typing import Any, Final

from devtools.graph_emulator.call import NO_BODY, GraphCall, GraphResult
from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.state import EmulatorState

MAX_BATCH_REQUESTS: Final = 20
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})

RunItem = Callable[[GraphCall], GraphResult]


def _invalid_payload() -> GraphError:
    return bad_request("Invalid batch payload format.", code="BadRequest")


def _missing_content_type(item_id: str) -> GraphError:
    return bad_request(
        f"Write request id : {item_id} does not contain Content-Type header or body.",
        code="BadRequest",
    )


def _content_type(item: dict[str, Any]) -> str | None:
    for name, value in (item.get("headers") or {}).items():
        if name.lower() == "content-type":
            return str(value)
    return None


def _check_item(item: object, seen: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _invalid_payload()
    item_id, method, url = item.get("id"), item.get("method"), item.get("url")
    if not isinstance(item_id, str) or not item_id or not isinstance(url, str):
        raise _invalid_payload()
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise _invalid_payload()
    headers = item.get("headers", {})
    if headers is not None and (
        not isinstance(headers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise _invalid_payload()
    # Graph compares request ids case-insensitively.
    if item_id.lower() in seen:
        raise bad_request(f"Request Id {item_id} has to be unique in a batch.", code="BadRequest")
    seen.add(item_id.lower())
    depends = item.get("dependsOn", [])
    if not isinstance(depends, list) or not all(isinstance(d, str) and d for d in depends):
        raise bad_request(
            f"Request {item_id} has an invalid dependsOn: it must be a list of request ids.",
            code="BadRequest",
        )
    if len(depends) > 1:
        # Graph's known issues for JSON batching: "requests can only depend on a single
        # other request" (https://learn.microsoft.com/en-us/graph/known-issues#json-batching).
        raise bad_request(
            f"Request {item_id} depends on {len(depends)} requests ("
            + ", ".join(depends)
            + "); a request may depend on only one other request.",
            code="BadRequest",
        )
    # A body needs a Content-Type, and a write needs both.
    has_body = "body" in item and item["body"] is not None
    if (has_body or method.upper() in _WRITE_METHODS) and (
        not has_body or _content_type(item) is None
    ):
        raise _missing_content_type(item_id)
    return item


def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items in an order where each comes after what it depends on (stable otherwise)."""
    by_id = {item["id"].lower(): item for item in items}
    for item in items:
        for dependency in item.get("dependsOn", []):
            if dependency.lower() not in by_id:
                raise bad_request(
                    f"Request {item['id']} depends on '{dependency}', which is not in the batch.",
                    code="BadRequest",
                )
            if dependency.lower() == item["id"].lower():
                raise bad_request(
                    f"Request {item['id']} cannot depend on itself.", code="BadRequest"
                )
    order: list[dict[str, Any]] = []
    placed: set[str] = set()
    remaining = list(items)
    while remaining:
        ready = [
            item
            for item in remaining
            if all(d.lower() in placed for d in item.get("dependsOn", []))
        ]
        if not ready:
            raise bad_request(
                "The dependsOn properties of the batch form a cycle: "
                + ", ".join(item["id"] for item in remaining)
                + ".",
                code="BadRequest",
            )
        for item in ready:
            order.append(item)
            placed.add(item["id"].lower())
        remaining = [item for item in remaining if item["id"].lower() not in placed]
    return order


def _validate(body: object) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid_payload()
    raw: list[Any] = body["requests"]
    if not raw:
        raise bad_request("The batch request must contain at least one request.", code="BadRequest")
    if len(raw) > MAX_BATCH_REQUESTS:
        raise bad_request(
            f"The number of requests in the batch ({len(raw)}) exceeds the limit of "
            f"{MAX_BATCH_REQUESTS}."
        )
    seen: set[str] = set()
    return _ordered([_check_item(item, seen) for item in raw])


def _item_body(item: dict[str, Any]) -> tuple[bytes, Any]:
    """(raw bytes, parsed JSON or ``NO_BODY``) of an item's body.

    A JSON Content-Type carries the body as JSON; any other is a base64 string, as Graph's
    batching documents (an image, say).
    """
    if "body" not in item or item["body"] is None:
        return b"", NO_BODY
    content_type = (_content_type(item) or "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return b"", item["body"]
    value = item["body"]
    if not isinstance(value, str):
        raise bad_request(
            f"The body of request {item['id']} must be a base64 string for Content-Type "
            f"'{content_type}'.",
            code="BadRequest",
        )
    try:
        padded = value + "=" * (-len(value) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(
            f"The body of request {item['id']} is not valid base64.", code="BadRequest"
        ) from exc
    return raw, NO_BODY


def _item_call(outer: GraphCall, item: dict[str, Any]) -> GraphCall:
    url: str = item["url"]
    if "://" in url:
        raise bad_request(
            "Invalid request URI: batch request URLs must be relative.", code="BadRequest"
        )
    path, _, query = url.partition("?")
    headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
    raw, parsed = _item_body(item)
    # The backlog object is shared on purpose: items of one batch queue behind each other.
    return dataclasses.replace(
        outer,
        method=str(item["method"]).upper(),
        path="/" + path.lstrip("/"),
        raw_query=query,
        headers=headers,
        body=raw,
        parsed_body=parsed,
        client_request_id=headers.get("client-request-id", outer.client_request_id),
        in_batch=True,
    )


def _item_response(item_id: str, result: GraphResult) -> dict[str, Any]:
    response: dict[str, Any] = {
        "id": item_id,
        "status": result.status,
        "headers": dict(result.headers),
    }
    if result.status != 204 and result.body is not None:
        response["body"] = result.body
    return response


def _run_one(
    call: GraphCall, item: dict[str, Any], statuses: dict[str, int], run_item: RunItem
) -> GraphResult:
    try:
        sub = _item_call(call, item)
    except GraphError as err:
        return GraphResult.from_error(err, call)
    if any(statuses.get(d.lower(), 200) >= 400 for d in item.get("dependsOn", [])):
        return GraphResult.from_error(
            GraphError(424, "FailedDependency", "A dependency of this request failed."), sub
        )
    return run_item(sub)


def run_batch(state: EmulatorState, call: GraphCall, run_item: RunItem) -> GraphResult:
    items = _validate(call.json_body())
    statuses: dict[str, int] = {}
    # When each item is done, in seconds from the start: items run side by side, and an
    # item with a dependency starts once that one is done.
    done_at: dict[str, float] = {}
    responses: list[dict[str, Any]] = []
    for item in items:
        item_id: str = item["id"]
        result = _run_one(call, item, statuses, run_item)
        statuses[item_id.lower()] = result.status
        start = max((done_at[d.lower()] for d in item.get("dependsOn", [])), default=0.0)
        done_at[item_id.lower()] = start + result.delay
        responses.append(_item_response(item_id, result))
    # Graph answers batch items in no particular order; clients must match them by id.
    state.batch_rng.shuffle(responses)
    return GraphResult(
        status=200,
        body={"responses": responses},
        headers={"Content-Type": "application/json; charset=utf-8"},
        # The batch answers when its slowest item is done.
        delay=max(done_at.values(), default=0.0),
        operations=len(responses),
    )
