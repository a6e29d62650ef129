"""The RSA key the emulator signs tokens with, and the JWKS document that publishes it.

The key is kept in the state directory so tokens cached by clients (MSAL caches for an hour)
stay valid across an emulator restart.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SIGNING_KEY_FILE: Final = "signing.key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self, issuer: str | None = None) -> dict[str, Any]:
        numbers = self.public_key.public_numbers()
        jwk: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
        }
        if issuer is not None:
            # Entra's v2 key set names the issuer each key signs for.
            jwk["issuer"] = issuer
        return jwk


def _kid_for(key: rsa.RSAPrivateKey) -> str:
    # Entra key ids are a base64url SHA-1 thumbprint (27 characters); mimic the format.
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url(hashlib.sha1(der, usedforsecurity=False).digest())


def generate_signing_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(private_key=key, kid=_kid_for(key))


def load_or_create_signing_key(state_dir: Path) -> SigningKey:
    path = state_dir / SIGNING_KEY_FILE
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size >= 2048:
            return SigningKey(private_key=loaded, kid=_kid_for(loaded))
    except (OSError, ValueError):
        pass
    signing = generate_signing_key()
    state_dir.mkdir(parents=True, exist_ok=True)
    pem = signing.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)
    return signing
