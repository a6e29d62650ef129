"""Issuing and checking the emulator's RS256 access tokens (Entra v2 claim set)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import jwt

from devtools.graph_emulator.defaults import GRAPH_APP_ID, GRAPH_RESOURCE
from devtools.graph_emulator.schema import UserRecord
from devtools.graph_emulator.signing_key import SigningKey, b64url

TOKEN_LIFETIME: Final = 3599
GRAPH_AUDIENCES: Final = (GRAPH_RESOURCE, GRAPH_APP_ID)
#: Verified tokens remembered, so a client reusing its token (as MSAL does for an hour)
#: is not charged an RSA verification per request.
_VERIFIED_CACHE_SIZE: Final = 4096


class TokenError(Exception):
    """The presented token is unusable; the message says why (never the token itself)."""


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    kind: Literal["app", "user"]
    app_id: str
    object_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    upn: str | None = None
    #: Directory role template ids of a signed-in user (the ``wids`` claim).
    wids: frozenset[str] = field(default_factory=frozenset)
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def issuer_for(base_url: str, tenant_id: str) -> str:
    return f"{base_url.rstrip('/')}/{tenant_id}/v2.0"


def service_principal_id(tenant_id: str, client_id: str) -> str:
    """Stable object id of the app's service principal in the tenant."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id}:{client_id}"))


def _pairwise_sub(object_id: str, client_id: str) -> str:
    # Entra's `sub` is unique per user and application, and opaque.
    return b64url(hashlib.sha256(f"{object_id}:{client_id}".encode()).digest())


class TokenService:
    def __init__(self, key: SigningKey, tenant_id: str, client_id: str) -> None:
        self.key = key
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.sp_object_id = service_principal_id(tenant_id, client_id)
        self._verified: dict[tuple[str, tuple[str, ...]], tuple[int, Principal]] = {}

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims,
            self.key.private_key,
            algorithm="RS256",
            headers={"kid": self.key.kid, "typ": "JWT"},
        )

    def _base_claims(
        self, issuer: str, audience: str, lifetime: int, app_id: str | None = None
    ) -> dict[str, Any]:
        now = int(time.time())
        client = app_id or self.client_id
        return {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": self.tenant_id,
            "azp": client,
            "appid": client,
            "azpacr": "1",  # client authenticated with a secret
            "ver": "2.0",
            "uti": b64url(secrets.token_bytes(16)),
        }

    def app_token(
        self,
        issuer: str,
        audience: str,
        roles: Sequence[str],
        lifetime: int = TOKEN_LIFETIME,
        app_id: str | None = None,
    ) -> str:
        """An application (client-credentials) token; ``app_id`` names another app."""
        claims = self._base_claims(issuer, audience, lifetime, app_id)
        sp = self.sp_object_id if app_id is None else service_principal_id(self.tenant_id, app_id)
        claims.update(oid=sp, sub=sp, idtyp="app", roles=list(roles))
        return self._sign(claims)

    def user_token(
        self,
        issuer: str,
        audience: str,
        user: UserRecord,
        scopes: Sequence[str],
        lifetime: int = TOKEN_LIFETIME,
        wids: Sequence[str] = (),
    ) -> str:
        claims = self._base_claims(issuer, audience, lifetime)
        if wids:
            claims["wids"] = list(wids)
        claims.update(
            oid=user["id"],
            sub=_pairwise_sub(user["id"], self.client_id),
            idtyp="user",
            scp=" ".join(scopes),
            upn=user["userPrincipalName"],
            preferred_username=user["userPrincipalName"],
            name=user.get("displayName"),
            given_name=user.get("givenName"),
            family_name=user.get("surname"),
        )
        return self._sign(claims)

    def id_token(self, issuer: str, user: UserRecord) -> str:
        claims = self._base_claims(issuer, self.client_id, TOKEN_LIFETIME)
        for name in ("azp", "appid", "azpacr", "uti"):
            claims.pop(name)
        claims.update(
            oid=user["id"],
            sub=_pairwise_sub(user["id"], self.client_id),
            preferred_username=user["userPrincipalName"],
            name=user.get("displayName"),
        )
        return self._sign(claims)

    def verify(self, token: str, audiences: Collection[str]) -> Principal:
        """Check signature, lifetime, audience, tenant and issuer shape; return the principal."""
        key = (token, tuple(audiences))
        cached = self._verified.get(key)
        if cached is not None:
            expires, principal = cached
            if time.time() < expires:
                return principal
            del self._verified[key]
        principal = self._verify(token, audiences)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[key] = (int(principal.claims["exp"]), principal)
        return principal

    def _verify(self, token: str, audiences: Collection[str]) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("Access token is malformed.") from exc
        if header.get("kid") != self.key.kid:
            raise TokenError("Signing key not found for the token's kid.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key.public_key,
                algorithms=["RS256"],
                audience=list(audiences),
                options={"require": ["exp", "iat", "nbf", "aud", "iss", "tid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("Lifetime validation failed, the token is expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("Invalid audience.") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("Access token validation failure.") from exc
        # The issuer embeds whatever host the client used (127.0.0.1 or localhost); the
        # tenant part is what matters.
        if claims.get("tid") != self.tenant_id or not str(claims.get("iss", "")).endswith(
            f"/{self.tenant_id}/v2.0"
        ):
            raise TokenError("Invalid issuer or tenant.")
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    app_id = str(claims.get("azp") or claims.get("appid") or "")
    if "scp" in claims:
        return Principal(
            kind="user",
            app_id=app_id,
            object_id=str(claims.get("oid", "")),
            scopes=frozenset(str(claims["scp"]).split()),
            upn=str(claims.get("upn") or claims.get("preferred_username") or "") or None,
            wids=_strings(claims.get("wids")),
            claims=claims,
        )
    roles = claims.get("roles") or []
    return Principal(
        kind="app",
        app_id=app_id,
        object_id=str(claims.get("oid", "")),
        roles=_strings(roles),
        claims=claims,
    )


def _strings(value: object) -> frozenset[str]:
    return frozenset(str(v) for v in value) if isinstance(value, list) else frozenset()
