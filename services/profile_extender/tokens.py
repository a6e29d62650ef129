"""Application tokens for Graph through MSAL's client-credentials flow.

One MSAL app object per process: MSAL caches the token and renews it near
expiry, so every call can simply ask for a token.
"""

from __future__ import annotations

import asyncio

import msal
import requests

from services.common.errors import Unauthenticated, Unavailable
from services.profile_extender.config import GraphSettings

__all__ = ["AppTokenProvider"]

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class AppTokenProvider:
    """provider = AppTokenProvider(settings)
    token = await provider.token()   # cached until near expiry
    """

    def __init__(self, settings: GraphSettings) -> None:
        self._settings = settings
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = asyncio.Lock()

    def _acquire(self) -> dict[str, str]:
        if self._app is None:
            # Built on first use: MSAL reads the authority's discovery
            # document here, and the authority may not be reachable at start.
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
        result: dict[str, str] = self._app.acquire_token_for_client([GRAPH_SCOPE])
        return result

    def _acquire_for_user(self, user_assertion: str) -> dict[str, str]:
        self._acquire()  # builds the app on first use
        assert self._app is not None
        result: dict[str, str] = self._app.acquire_token_on_behalf_of(user_assertion, [GRAPH_SCOPE])
        return result

    async def on_behalf_of(self, user_assertion: str) -> str:
        """A delegated Graph token for the user who sent `user_assertion` (their
        token for this app), through MSAL's on-behalf-of flow."""
        try:
            result = await asyncio.to_thread(self._acquire_for_user, user_assertion)
        except (requests.RequestException, ValueError) as error:
            raise Unavailable(f"could not reach the authority: {error}") from error
        if "access_token" not in result:
            reason = result.get("error_description") or result.get("error") or "unknown error"
            raise Unauthenticated(f"the user's token was refused: {reason.splitlines()[0]}")
        return str(result["access_token"])

    async def token(self) -> str:
        # MSAL is synchronous; the lock keeps concurrent callers from each
        # asking the authority when the cached token has just expired.
        async with self._lock:
            try:
                result = await asyncio.to_thread(self._acquire)
            except (requests.RequestException, ValueError) as error:
                raise Unavailable(f"could not reach the authority: {error}") from error
        if "access_token" not in result:
            reason = result.get("error_description") or result.get("error") or "unknown error"
            raise Unavailable(f"could not get a Graph token: {reason.splitlines()[0]}")
        return str(result["access_token"])
