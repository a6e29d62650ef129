"""The HTTP face of Graph: authentication, correlation ids, latency, JSON rendering."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from devtools.graph_emulator.call import GRAPH_JSON, GraphCall, GraphResult
from devtools.graph_emulator.connection_cut import cut_connection
from devtools.graph_emulator.errors import GraphError, graph_error_body
from devtools.graph_emulator.pipeline import execute
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.tokens import GRAPH_AUDIENCES, Principal, TokenError

log = logging.getLogger("graph_emulator.graph")

_WWW_AUTHENTICATE: Final = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)


def public_base_url(state: EmulatorState, request: Request) -> str:
    if state.public_url:
        return state.public_url.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def render(result: GraphResult, request_id: str, client_request_id: str) -> Response:
    headers = dict(result.headers)
    headers["request-id"] = request_id
    headers["client-request-id"] = client_request_id
    if result.status == 204 or result.body is None:
        headers.pop("Content-Type", None)
        return Response(status_code=result.status, headers=headers)
    media = headers.pop("Content-Type", GRAPH_JSON)
    if isinstance(result.body, str) and media.startswith("text/"):
        content = result.body.encode()
    else:
        # Graph sends UTF-8 JSON, not \u-escaped ASCII; accented skills must survive as-is.
        content = json.dumps(result.body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content=content, status_code=result.status, headers=headers, media_type=media)


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    client_request_id: str,
    headers: dict[str, str] | None = None,
) -> Response:
    result = GraphResult(
        status=status,
        body=graph_error_body(code, message, request_id, client_request_id),
        headers={"Content-Type": GRAPH_JSON, **(headers or {})},
    )
    return render(result, request_id, client_request_id)


def _authenticate(state: EmulatorState, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("Access token is empty.")
    return state.tokens.verify(token.strip(), GRAPH_AUDIENCES)


async def _wait(state: EmulatorState, result: GraphResult) -> None:
    """Hold the answer for its latency; a sleeping task costs next to nothing, so thousands
    of slow answers can wait side by side."""
    state.operations_waiting += result.operations
    state.stats.note_waiting(state.operations_waiting)
    try:
        await asyncio.sleep(result.delay)
    finally:
        state.operations_waiting -= result.operations


async def graph_endpoint(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or request_id
    state.stats.requests += 1
    try:
        principal = _authenticate(state, request)
    except TokenError as err:
        state.stats.by_status[401] += 1
        return error_response(
            401,
            "InvalidAuthenticationToken",
            str(err),
            request_id,
            client_request_id,
            {"WWW-Authenticate": _WWW_AUTHENTICATE},
        )
    latency_ms = state.config.latency_ms
    if request.path_params.get("rest", "").strip("/") == "$batch":
        latency_ms += state.config.batch_latency_ms
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)
    try:
        body = await request.body()
        call = GraphCall(
            method=request.method.upper(),
            path="/" + request.path_params.get("rest", "").lstrip("/"),
            raw_query=request.url.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            principal=principal,
            base_url=public_base_url(state, request),
            request_id=request_id,
            client_request_id=client_request_id,
        )
        result = execute(state, call)
        if result.delay:
            await _wait(state, result)
        if state.faults.drop(state.config) and cut_connection(request.scope.get("client")):
            # The work is done (a write is applied) but the client never hears of it.
            state.stats.dropped_connections += 1
            log.info("connection dropped (injected fault)", extra={"requestId": request_id})
    except GraphError as err:
        return error_response(
            err.status, err.code, err.message, request_id, client_request_id, err.headers
        )
    except Exception:  # a bug must still answer in Graph's shape, never with a traceback
        log.exception("unhandled error", extra={"requestId": request_id})
        return error_response(
            500, "generalException", "An internal error occurred.", request_id, client_request_id
        )
    return render(result, request_id, client_request_id)
