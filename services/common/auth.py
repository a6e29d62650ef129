"""Who is calling: bearer tokens checked on every RPC, against each RPC's
access policy declared in the protos (`option (profilesync.v1.access)`).

    verifier = TokenVerifier(entra_settings)
    server, port, health = await create_server(settings, bindings, verifier=verifier)
    # in a handler:
    principal = current_principal()

A token must be a JWT signed by a key of the authority's JWKS, issued by the
tenant's issuer, for this app's audience, within its validity, for the
configured tenant. A user (delegated) token must also carry one of the RPC's
delegated scopes in `scp`, an app token one of its app roles in `roles`
("Protected web API: verify scopes and app roles",
https://learn.microsoft.com/entra/identity-platform/scenario-protected-web-api-verification-scope-app-roles).
Refusals are UNAUTHENTICATED (no or bad token) or PERMISSION_DENIED (valid
token, wrong kind, scope or role), with the reason; the token itself is never
logged or echoed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import jwt
from google.protobuf import descriptor_pool

from profilesync.v1 import options_pb2
from services.common.entra import EntraSettings
from services.common.errors import PermissionDenied, Unauthenticated, Unavailable
from services.common.tls import client_ssl_context

__all__ = ["Principal", "TokenVerifier", "access_policy", "authorize", "current_principal"]

log = logging.getLogger(__name__)

# Tokens a little past expiry are still refused; this only absorbs clock skew.
CLOCK_SKEW_SECONDS = 60
# Signing keys are re-read at most this often (new keys are picked up on a miss).
JWKS_LIFESPAN_SECONDS = 3600

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "profilesync_principal", default=None
)

# Unannotated RPCs are open only to the internal role: a new RPC is closed
# until someone decides who may call it.
_DEFAULT_POLICY = options_pb2.AccessPolicy(app_roles=["Profiles.Sync"])


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    subject: str  # object id of the user or of the calling app's service principal
    name: str  # UPN for users, client (app) id for apps
    is_user: bool
    roles: frozenset[str]
    scopes: frozenset[str]
    token: str = field(repr=False)  # kept for on-behalf-of; never logged


def current_principal() -> Principal:
    """The caller of the RPC being handled (set by the interceptor)."""
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("this call carries no verified token")
    return principal


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _principal.set(principal)


@cache
def access_policy(method: str) -> options_pb2.AccessPolicy:
    """The access policy of `/package.Service/Method`, from the proto options."""
    service_name, _, method_name = method.lstrip("/").partition("/")
    try:
        service = descriptor_pool.Default().FindServiceByName(service_name)
    except KeyError:
        return _DEFAULT_POLICY
    found = service.methods_by_name.get(method_name)
    if found is None:
        return _DEFAULT_POLICY
    options = found.GetOptions()
    if not options.HasExtension(options_pb2.access):  # type: ignore[arg-type]
        return _DEFAULT_POLICY
    policy: options_pb2.AccessPolicy = options.Extensions[options_pb2.access]  # type: ignore[index]
    return policy


def authorize(principal: Principal, policy: options_pb2.AccessPolicy, method: str) -> None:
    name = method.rsplit("/", 1)[-1]
    if principal.is_user:
        if not policy.delegated_users:
            raise PermissionDenied(
                f"{name} needs an application token with one of the roles "
                f"{', '.join(policy.app_roles)}; a user token was sent"
            )
        # A policy open to users without naming a scope lets no user in.
        if not principal.scopes & set(policy.delegated_scopes):
            raise PermissionDenied(
                f"{name} needs a user token with the delegated scope "
                f"{' or '.join(policy.delegated_scopes) or '(none declared)'}; "
                f"the token has {', '.join(sorted(principal.scopes)) or 'no scope'}"
            )
        return
    if not policy.app_roles:
        raise PermissionDenied(
            f"{name} needs a delegated user token; an application token was sent"
        )
    if not principal.roles & set(policy.app_roles):
        raise PermissionDenied(
            f"{name} needs one of the app roles {', '.join(policy.app_roles)}; "
            f"the token has {', '.join(sorted(principal.roles)) or 'none'}"
        )


class TokenVerifier:
    def __init__(self, settings: EntraSettings) -> None:
        self._settings = settings
        self._ssl = client_ssl_context(settings.ca_bundle)
        self._issuers: tuple[str, ...] = ()
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()

    async def _discover(self) -> jwt.PyJWKClient:
        """Reads the authority's OpenID configuration once: issuer and JWKS location."""
        async with self._lock:
            if self._jwks is not None:
                return self._jwks
            url = f"{self._settings.authority}/v2.0/.well-known/openid-configuration"
            try:
                async with httpx.AsyncClient(verify=self._ssl, trust_env=False, timeout=10) as http:
                    response = await http.get(url)
                    response.raise_for_status()
                    document = response.json()
            except (httpx.HTTPError, ValueError) as error:
                raise Unavailable(f"cannot read the authority's configuration: {error}") from error
            issuer = str(document["issuer"]).replace("{tenantid}", self._settings.tenant_id)
            # v1.0 access tokens carry the sts.windows.net issuer.
            self._issuers = (issuer, f"https://sts.windows.net/{self._settings.tenant_id}/")
            self._jwks = jwt.PyJWKClient(
                str(document["jwks_uri"]),
                cache_keys=True,
                lifespan=JWKS_LIFESPAN_SECONDS,
                ssl_context=self._ssl,
                timeout=10,
            )
            return self._jwks

    async def verify(self, token: str) -> Principal:
        jwks = await self._discover()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted")
        try:
            key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as error:
            raise Unavailable(f"cannot read the authority's signing keys: {error}") from error
        except jwt.PyJWKClientError:
            raise Unauthenticated(
                "the token is signed by a key the authority does not publish"
            ) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=list(self._settings.audiences),
                issuer=list(self._issuers),
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token was issued for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token was issued by another authority") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token signature is invalid") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is invalid: {error}") from None
        if claims.get("tid") != self._settings.tenant_id:
            raise Unauthenticated("the token was issued for another tenant")
        scopes = frozenset(str(claims.get("scp", "")).split())
        # A user token carries `scp` (possibly empty) and, with the optional
        # claim, idtyp "user"; an app token has neither.
        is_user = "scp" in claims or claims.get("idtyp") == "user"
        return Principal(
            subject=str(claims.get("oid") or claims.get("sub") or ""),
            name=str(
                claims.get("upn")
                or claims.get("preferred_username")
                or claims.get("azp")
                or claims.get("appid")
                or ""
            ),
            is_user=is_user,
            roles=frozenset(str(role) for role in claims.get("roles", []) or []),
            scopes=scopes,
            token=token,
        )

    async def authenticate(self, metadata: Any, method: str) -> Principal | None:
        """Verifies the call's bearer token against the method's policy.

        Returns None for anonymous methods; raises Unauthenticated or
        PermissionDenied otherwise.
        """
        policy = access_policy(method)
        if policy.anonymous:
            return None
        token = bearer_token(metadata)
        started = time.perf_counter()
        principal = await self.verify(token)
        authorize(principal, policy, method)
        log.debug("caller verified in %.1f ms", (time.perf_counter() - started) * 1000)
        return principal


def bearer_token(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    raise Unauthenticated("this call needs an Authorization: Bearer <token> header")
