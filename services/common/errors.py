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
    """A request field is malformed or out of range; the message names it."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(ProfileSyncError):
    """No bearer token, or one that does not verify."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ProfileSyncError):
    """The caller's token lacks the role or scope the call needs."""

    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(ProfileSyncError):
    """The named user, run, subscriber or snapshot does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyRunning(ProfileSyncError):
    """A run of the shard holds its lock; the message names the run."""

    code = grpc.StatusCode.ALREADY_EXISTS


class VersionMismatch(ProfileSyncError):
    """An update's expectedVersion is no longer the profile's version."""

    code = grpc.StatusCode.ABORTED


class FailedPrecondition(ProfileSyncError):
    """The request cannot go on from the state things are in (the message says what to do)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class CursorExpired(ProfileSyncError):
    """Retention removed events after the caller's cursor."""

    code = grpc.StatusCode.OUT_OF_RANGE


class RateLimited(ProfileSyncError):
    """Too much at once; `retry_after_seconds`, when known, travels to the caller
    as `retry-after` metadata (a `Retry-After` header through the gateway)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(ProfileSyncError):
    """A dependency (Redis, Graph, another service) cannot answer now; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE


class GraphUnavailable(Unavailable):
    """Microsoft Graph kept failing after every retry."""
