"""Domain errors and the one place that maps them to gRPC status codes.

    ProfileSyncError                 (base; never raised itself)
    ├── InvalidArgument              INVALID_ARGUMENT     HTTP 400
    ├── Unauthenticated              UNAUTHENTICATED      HTTP 401
    ├── PermissionDenied             PERMISSION_DENIED    HTTP 403
    ├── NotFound                     NOT_FOUND            HTTP 404
    ├── AlreadyRunning               ALREADY_EXISTS       HTTP 409
    ├── VersionMismatch              ABORTED              HTTP 409
    ├── FailedPrecondition           FAILED_PRECONDITION  HTTP 400
    ├── CursorExpired                OUT_OF_RANGE         HTTP 400
    ├── RateLimited                  RESOURCE_EXHAUSTED   HTTP 429
    └── Unavailable                  UNAVAILABLE          HTTP 503
        └── GraphUnavailable         (Graph kept failing after retries)

Anything else that escapes a handler is answered INTERNAL with a reference
id and logged with its traceback; the caller never sees the traceback.
"""

from __future__ import annotations

import grpc

__all__ = [
    "AlreadyRunning",
    "CursorExpired",
    "FailedPrecondition",
    "GraphUnavailable",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ProfileSyncError",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "VersionMismatch",
]


class ProfileSyncError(Exception):
    """Base of every error a caller is meant to see; the message is shown as is."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN


class InvalidArgument(ProfileSyncError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(ProfileSyncError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ProfileSyncError):
    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(ProfileSyncError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyRunning(ProfileSyncError):
    code = grpc.StatusCode.ALREADY_EXISTS


class VersionMismatch(ProfileSyncError):
    code = grpc.StatusCode.ABORTED


class FailedPrecondition(ProfileSyncError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class CursorExpired(ProfileSyncError):
    code = grpc.StatusCode.OUT_OF_RANGE


class RateLimited(ProfileSyncError):
    """Too much at once; `retry_after_seconds`, when known, travels to the caller
    as `retry-after` metadata (a `Retry-After` header through the gateway)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(ProfileSyncError):
    code = grpc.StatusCode.UNAVAILABLE


class GraphUnavailable(Unavailable):
    """Microsoft Graph kept failing after every retry."""
