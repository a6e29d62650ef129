"""``POST /$batch``: up to 20 operations, each answered on its own.

Items go through the same per-call function as top-level requests (failure injection,
throttling, handlers), so a single item can answer 429 or 503 while the batch returns 200.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

from .call import GraphCall, GraphResult
from .errors import GraphError, bad_request
from .state import EmulatorState

MAX_BATCH_REQUESTS: Final = 20
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})

RunItem = Callable[[GraphCall], GraphResult]


def _invalid_payload() -> GraphError:
    return bad_request("Invalid batch payload format.", code="BadRequest")


def _validate(body: object) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise _invalid_payload()
    items: list[Any] = body["requests"]
    if not items:
        raise bad_request("The batch request must contain at least one request.", code="BadRequest")
    if len(items) > MAX_BATCH_REQUESTS:
        raise bad_request(
            f"The number of requests in the batch ({len(items)}) exceeds the limit of "
            f"{MAX_BATCH_REQUESTS}."
        )
    seen: set[str] = set()
    for item in items:
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
            raise bad_request(
                f"Request Id {item_id} has to be unique in a batch.", code="BadRequest"
            )
        depends = item.get("dependsOn", [])
        if not isinstance(depends, list) or not all(
            isinstance(d, str) and d.lower() in seen for d in depends
        ):
            raise bad_request(
                f"Request {item_id} has an invalid dependsOn: it must list ids of earlier "
                "requests in the batch.",
                code="BadRequest",
            )
        seen.add(item_id.lower())
        if method.upper() in _WRITE_METHODS:
            has_type = any(k.lower() == "content-type" for k in (headers or {}))
            if "body" not in item or not has_type:
                raise bad_request(
                    f"Write request id : {item_id} does not contain Content-Type header or body.",
                    code="BadRequest",
                )
    return items


def _item_call(outer: GraphCall, item: dict[str, Any]) -> GraphCall | GraphError:
    url: str = item["url"]
    if "://" in url:
        return bad_request(
            "Invalid request URI: batch request URLs must be relative.", code="BadRequest"
        )
    path, _, query = url.partition("?")
    headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
    return dataclasses.replace(
        outer,
        method=str(item["method"]).upper(),
        path="/" + path.lstrip("/"),
        raw_query=query,
        headers=headers,
        body=b"",
        parsed_body=item.get("body"),
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


def run_batch(state: EmulatorState, call: GraphCall, run_item: RunItem) -> GraphResult:
    items = _validate(call.json_body())
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    for item in items:
        item_id: str = item["id"]
        sub = _item_call(call, item)
        if isinstance(sub, GraphError):
            result = GraphResult.from_error(sub, call)
        elif any(statuses.get(d.lower(), 200) >= 400 for d in item.get("dependsOn", [])):
            result = GraphResult.from_error(
                GraphError(424, "FailedDependency", "A dependency of this request failed."),
                sub,
            )
        else:
            result = run_item(sub)
        statuses[item_id.lower()] = result.status
        responses.append(_item_response(item_id, result))
    # Graph answers batch items in no particular order; clients must match them by id.
    state.batch_rng.shuffle(responses)
    return GraphResult(
        status=200,
        body={"responses": responses},
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
