"""Error bodies in the two shapes clients parse.

Graph's ``{"error": {...}}`` and Entra's OAuth ``{"error", "error_description", ...}``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


class GraphError(Exception):
    """Raised by Graph handlers; turned into Graph's error shape at the edge."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def graph_error_body(
    code: str, message: str, request_id: str, client_request_id: str
) -> dict[str, Any]:
    # Graph stamps innerError with a second-precision UTC time and both correlation ids.
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


class EntraError(Exception):
    """Raised by the identity endpoints; rendered as an AADSTS-style OAuth error."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"{error}: AADSTS{aadsts}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


def entra_error_body(err: EntraError, correlation_id: str | None) -> dict[str, Any]:
    trace_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    # Entra appends trace/correlation ids and a timestamp to every description.
    description = (
        f"AADSTS{err.aadsts}: {err.description} Trace ID: {trace_id} "
        f"Correlation ID: {correlation} Timestamp: {stamp}"
    )
    return {
        "error": err.error,
        "error_description": description,
        "error_codes": [err.aadsts],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={err.aadsts}",
    }
