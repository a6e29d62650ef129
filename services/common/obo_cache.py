"""Tokens from the on-behalf-of flow, kept by the user token that asked for them.

MSAL Python's `acquire_token_on_behalf_of` asks the authority every time (its
cache is read only by `acquire_token_silent`, which needs the account). A LOB
user who saves a profile twice would cost two round trips to Entra ID, each
tens to hundreds of milliseconds. Like Microsoft.Identity.Web, we keep each
result under a hash of the incoming user token (the assertion) and its scopes:

    cache = OboTokenCache()
    token = cache.get(assertion, scopes)                  # None: ask the authority
    cache.put(assertion, scopes, token, expires_in=3599)

Only a caller presenting the same user token, which the services have just
verified (signature, audience, expiry), gets the cached token back. A token is
not handed out in its last `REFRESH_MARGIN_SECONDS`, so a request that starts
with it does not reach Graph with an expired one. Entries live in this process
only and the oldest are dropped past `max_entries`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["OboTokenCache"]

REFRESH_MARGIN_SECONDS = 300.0


class OboTokenCache:
    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    @staticmethod
    def _key(assertion: str, scopes: tuple[str, ...]) -> str:
        # The user's token itself is never kept, only its hash.
        material = "\x00".join([assertion, *sorted(scopes)]).encode()
        return hashlib.sha256(material).hexdigest()

    def get(self, assertion: str, scopes: tuple[str, ...]) -> str | None:
        key = self._key(assertion, scopes)
        entry = self._entries.get(key)
        if entry is None:
            return None
        token, usable_until = entry
        if self._clock() >= usable_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return token

    def put(self, assertion: str, scopes: tuple[str, ...], token: str, expires_in: float) -> None:
        # A short-lived token is used for half its life rather than not at all.
        margin = min(REFRESH_MARGIN_SECONDS, expires_in / 2)
        key = self._key(assertion, scopes)
        self._entries[key] = (token, self._clock() + expires_in - margin)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
