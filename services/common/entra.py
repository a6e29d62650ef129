"""The Entra ID (Azure AD) app registration every service shares, and MSAL
tokens for it.

    settings = EntraSettings.from_env(env, with_secret=True)
    tokens = MsalTokens(settings)
    graph_token = await tokens.for_app(GRAPH_SCOPES)          # client credentials
    user_graph_token = await tokens.on_behalf_of(user_jwt, GRAPH_SCOPES)

One MSAL app object per process: MSAL caches tokens and renews them near
expiry, so callers simply ask for a token each time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msal
import requests

from services.common.errors import Unauthenticated, Unavailable
from services.common.obo_cache import OboTokenCache
from services.common.settings import EnvReader

__all__ = ["GRAPH_SCOPES", "EntraSettings", "MsalTokens"]

MICROSOFT_AUTHORITY_HOST = "https://login.microsoftonline.com"
GRAPH_SCOPES = ("https://graph.microsoft.com/.default",)


@dataclass(frozen=True)
class EntraSettings:
    tenant_id: str
    client_id: str
    # `https://login.microsoftonline.com/<tenant>` or the emulator's equivalent.
    authority: str
    # PEM bundle trusted for the authority and Graph; None = the system store.
    ca_bundle: str | None
    client_secret: str | None = field(default=None, repr=False)

    @property
    def instance_discovery(self) -> bool:
        # MSAL asks Microsoft's endpoint to validate the authority; an
        # authority elsewhere (the emulator, a proxy) cannot be validated so.
        return self.authority.startswith(MICROSOFT_AUTHORITY_HOST)

    @property
    def audiences(self) -> tuple[str, ...]:
        """What `aud` may be in tokens issued for this app (v2 and v1 forms)."""
        return (self.client_id, f"api://{self.client_id}")

    @property
    def app_scopes(self) -> tuple[str, ...]:
        """Scope for a client-credentials token to call our own services."""
        return (f"api://{self.client_id}/.default",)

    @classmethod
    def from_env(cls, env: EnvReader, *, with_secret: bool) -> EntraSettings:
        tenant_id = env.text("AZURE_TENANT_ID")
        host = env.text("AZURE_AUTHORITY_HOST", MICROSOFT_AUTHORITY_HOST).rstrip("/")
        return cls(
            tenant_id=tenant_id,
            client_id=env.text("AZURE_CLIENT_ID"),
            authority=f"{host}/{tenant_id}",
            ca_bundle=env.optional("AZURE_CA_BUNDLE"),
            client_secret=env.text("AZURE_CLIENT_SECRET") if with_secret else None,
        )


class MsalTokens:
    def __init__(self, settings: EntraSettings) -> None:
        if not settings.client_secret:
            raise ValueError("MsalTokens needs the client secret")
        self._settings = settings
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = asyncio.Lock()
        self._obo_tokens = OboTokenCache()

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            # Built on first use: MSAL reads the authority's discovery document
            # here, and the authority may not be reachable at start-up.
            session = requests.Session()
            # Trust exactly the configured bundle, not whatever the environment says.
            session.trust_env = False
            session.verify = self._settings.ca_bundle or True
            self._app = msal.ConfidentialClientApplication(
                self._settings.client_id,
                client_credential=self._settings.client_secret,
                authority=self._settings.authority,
                http_client=session,
                instance_discovery=self._settings.instance_discovery,
            )
        return self._app

    async def _call(self, acquire: Any, *args: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await asyncio.to_thread(acquire, *args)
        except (requests.RequestException, ValueError) as error:
            raise Unavailable(f"could not reach the authority: {error}") from error
        return result

    @staticmethod
    def _reason(result: dict[str, Any]) -> str:
        reason = str(result.get("error_description") or result.get("error") or "unknown error")
        return reason.splitlines()[0]

    async def for_app(self, scopes: tuple[str, ...]) -> str:
        """An application token (client credentials), cached by MSAL."""
        # The lock keeps concurrent callers from each asking the authority
        # when the cached token has just expired.
        async with self._lock:
            result = await self._call(
                lambda: self._application().acquire_token_for_client(list(scopes))
            )
        if "access_token" not in result:
            raise Unavailable(f"could not get an application token: {self._reason(result)}")
        return str(result["access_token"])

    async def on_behalf_of(self, user_assertion: str, scopes: tuple[str, ...]) -> str:
        """A delegated token for the user who sent `user_assertion` (their token
        for this app), through the on-behalf-of flow; reused while it is valid
        for later calls with the same user token (see obo_cache)."""
        cached = self._obo_tokens.get(user_assertion, scopes)
        if cached is not None:
            return cached
        result = await self._call(
            lambda: self._application().acquire_token_on_behalf_of(user_assertion, list(scopes))
        )
        if "access_token" not in result:
            raise Unauthenticated(f"the user's token was refused: {self._reason(result)}")
        token = str(result["access_token"])
        expires_in = result.get("expires_in")
        if isinstance(expires_in, int | float) and expires_in > 0:
            self._obo_tokens.put(user_assertion, scopes, token, float(expires_in))
        return token
