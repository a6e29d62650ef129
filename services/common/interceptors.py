"""The gRPC server interceptor every service installs.

For each call it verifies the caller's token against the RPC's access
policy (services.common.auth), decodes the request bytes itself
(services.common.decoding, so bytes that do not decode are an
INVALID_ARGUMENT rather than grpc's UNKNOWN), checks the request against the
limits declared in the protos, maps domain errors to status codes
(services.common.errors), hides unexpected failures behind a reference id,
and records Prometheus metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from google.protobuf.message import Message
from prometheus_client import Counter, Histogram

from services.common.auth import TokenVerifier, set_principal
from services.common.decoding import Deserializer, decode_request
from services.common.errors import (
    PermissionDenied,
    ProfileSyncError,
    RateLimited,
    Unauthenticated,
)
from services.common.redis_client import REDIS_UNAVAILABLE
from services.common.validation import validate

Context = grpc.aio.ServicerContext[Any, Any]
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
StreamBehavior = Callable[[Any, Context], AsyncIterator[Any]]

__all__ = ["ServiceInterceptor"]

log = logging.getLogger(__name__)

RPC_TOTAL = Counter("profilesync_grpc_requests_total", "gRPC calls handled", ["method", "code"])
RPC_SECONDS = Histogram(
    "profilesync_grpc_request_seconds",
    "Time to answer a unary gRPC call (to the end of the stream for streams)",
    ["method"],
)


async def _admit(
    verifier: TokenVerifier | None,
    context: Context,
    method: str,
    raw: Any,
    deserializer: Deserializer | None,
) -> Any:
    """Authentication, authorisation, decoding and input limits, before any handler
    runs; answers the decoded request. The token is checked before the bytes are
    looked at, so a caller without one learns nothing about what it sent."""
    if verifier is not None:
        try:
            principal = await verifier.authenticate(context.invocation_metadata(), method)
        except (Unauthenticated, PermissionDenied) as refusal:
            # The reason only: the token itself is never logged.
            log.warning("refused %s: %s", method, refusal)
            raise
        set_principal(principal)
    request = decode_request(deserializer, raw)
    if isinstance(request, Message):
        validate(request)
    return request


async def _fail(context: Context, method: str, error: BaseException) -> None:
    if isinstance(error, REDIS_UNAVAILABLE):
        # A node down, a failover or resharding under way: the same call
        # later can succeed (HTTP 503), whichever handler met it.
        log.warning("%s: Redis unavailable: %s", method, error)
        RPC_TOTAL.labels(method, "UNAVAILABLE").inc()
        await context.abort(grpc.StatusCode.UNAVAILABLE, "Redis unavailable, retry")
    if isinstance(error, ProfileSyncError):
        if isinstance(error, (Unauthenticated, PermissionDenied)):
            # Refusals decided inside a handler (e.g. Graph refused the user)
            # are logged like the interceptor's own; the reason only.
            log.warning("refused %s: %s", method, error)
        RPC_TOTAL.labels(method, error.code.name).inc()
        if isinstance(error, RateLimited) and error.retry_after_seconds is not None:
            # Envoy's transcoder turns response metadata into HTTP headers.
            context.set_trailing_metadata((("retry-after", str(error.retry_after_seconds)),))
        await context.abort(error.code, str(error))
    if isinstance(error, NotImplementedError):
        # The generated servicer base classes raise this for RPCs not built yet.
        RPC_TOTAL.labels(method, "UNIMPLEMENTED").inc()
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error in %s (reference %s)", method, reference, exc_info=error)
    RPC_TOTAL.labels(method, "INTERNAL").inc()
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error (reference {reference})")


def _wrap_unary(
    verifier: TokenVerifier | None,
    method: str,
    behavior: UnaryBehavior,
    deserializer: Deserializer | None,
) -> UnaryBehavior:
    async def handle(raw: Any, context: Context) -> Any:
        started = time.perf_counter()
        try:
            request = await _admit(verifier, context, method, raw, deserializer)
            response = await behavior(request, context)
        except (grpc.aio.AbortError, KeyboardInterrupt):
            raise
        except Exception as error:  # mapped to a status, never leaked
            await _fail(context, method, error)
            raise  # unreachable: abort raises
        finally:
            RPC_SECONDS.labels(method).observe(time.perf_counter() - started)
        RPC_TOTAL.labels(method, "OK").inc()
        return response

    return handle


def _wrap_stream(
    verifier: TokenVerifier | None,
    method: str,
    behavior: StreamBehavior,
    deserializer: Deserializer | None,
) -> StreamBehavior:
    async def handle(raw: Any, context: Context) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            request = await _admit(verifier, context, method, raw, deserializer)
            async for item in behavior(request, context):
                yield item
        except (grpc.aio.AbortError, KeyboardInterrupt):
            raise
        except Exception as error:
            await _fail(context, method, error)
        finally:
            RPC_SECONDS.labels(method).observe(time.perf_counter() - started)
        RPC_TOTAL.labels(method, "OK").inc()

    return handle


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """`verifier=None` skips authentication: only for in-process tests of a servicer."""

    def __init__(self, verifier: TokenVerifier | None = None) -> None:
        self._verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        # Health and reflection are answered by grpc's own servicers as they are.
        if handler is None or not method.startswith("/profilesync."):
            return handler
        # No request_deserializer on the handlers returned: grpc would decode
        # before this code runs and answer a DecodeError as UNKNOWN; the wrapped
        # behaviour decodes the raw bytes itself (see services.common.decoding).
        deserializer = handler.request_deserializer
        if handler.unary_unary is not None:
            behavior = cast(UnaryBehavior, handler.unary_unary)
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(self._verifier, method, behavior, deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream_behavior = cast(StreamBehavior, handler.unary_stream)
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(self._verifier, method, stream_behavior, deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler
