"""Channels from one service to another, carrying this app's own token.

    channel = authenticated_channel("extender:50051", tokens, entra.app_scopes)
    stub = ProfileExtenderStub(channel)

The token comes from MSAL's client-credentials flow for the profile-sync
app registration itself (audience `api://<client id>`), so the callee checks
it like any other caller's and sees the app roles granted to the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from services.common.entra import MsalTokens

__all__ = ["authenticated_channel"]


if TYPE_CHECKING:  # generic only in grpc-stubs, not at run time
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor


class _BearerToken:
    # grpc.aio files an interceptor object under one call kind only, so each
    # kind gets its own subclass below.
    def __init__(self, tokens: MsalTokens, scopes: tuple[str, ...]) -> None:
        self._tokens = tokens
        self._scopes = scopes

    async def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        token = await self._tokens.for_app(self._scopes)
        metadata = [
            (key, value) for key, value in (details.metadata or ()) if key != "authorization"
        ]
        metadata.append(("authorization", f"Bearer {token}"))
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*metadata),
            details.credentials,
            details.wait_for_ready,
        )


class _UnaryUnaryToken(_BearerToken, _UnaryUnary):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(await self._with_token(details), request)


class _UnaryStreamToken(_BearerToken, _UnaryStream):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(await self._with_token(details), request)


def authenticated_channel(
    address: str, tokens: MsalTokens, scopes: tuple[str, ...]
) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        interceptors=[
            _UnaryUnaryToken(tokens, scopes),  # type: ignore[list-item]
            _UnaryStreamToken(tokens, scopes),  # type: ignore[list-item]
        ],
        options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000),
        ],
    )
