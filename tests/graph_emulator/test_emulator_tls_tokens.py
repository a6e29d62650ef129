from __future__ import annotations

import ipaddress
import ssl
import time
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from devtools.graph_emulator.defaults import GRAPH_RESOURCE
from devtools.graph_emulator.signing_key import SigningKey, load_or_create_signing_key
from devtools.graph_emulator.tls import ensure_tls_files
from devtools.graph_emulator.tokens import GRAPH_AUDIENCES, TokenError, TokenService

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"
ISSUER = f"https://127.0.0.1:8443/{TENANT}/v2.0"


def test_tls_files_are_created_valid_and_reused(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path)
    cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert files.key_file.stat().st_mode & 0o077 == 0

    # A client trusting only ca.pem accepts the server certificate.
    context = ssl.create_default_context(cafile=str(files.ca_file))
    assert context.cert_store_stats()["x509_ca"] == 1

    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    again = ensure_tls_files(tmp_path)
    assert again == files
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_broken_server_key_is_replaced_but_ca_kept(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path)
    ca_before = files.ca_file.read_bytes()
    files.key_file.write_text("garbage")
    ensure_tls_files(tmp_path)
    assert files.ca_file.read_bytes() == ca_before
    cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))


def test_signing_key_persists(tmp_path: Path) -> None:
    first = load_or_create_signing_key(tmp_path)
    second = load_or_create_signing_key(tmp_path)
    assert first.kid == second.kid and len(first.kid) == 27


@pytest.fixture
def tokens(signing_key: SigningKey) -> TokenService:
    return TokenService(signing_key, TENANT, CLIENT)


def test_app_token_claims(tokens: TokenService) -> None:
    token = tokens.app_token(ISSUER, GRAPH_RESOURCE, ["User.Read.All"])
    header = jwt.get_unverified_header(token)
    assert header["kid"] == tokens.key.kid and header["typ"] == "JWT"
    assert header["alg"] == "RS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == GRAPH_RESOURCE and claims["iss"] == ISSUER
    assert claims["tid"] == TENANT and claims["azp"] == CLIENT and claims["appid"] == CLIENT
    assert claims["oid"] == tokens.sp_object_id == claims["sub"]
    assert claims["roles"] == ["User.Read.All"] and "scp" not in claims
    assert claims["ver"] == "2.0" and claims["uti"]
    assert claims["exp"] - claims["iat"] == 3599 and claims["nbf"] == claims["iat"]
    principal = tokens.verify(token, GRAPH_AUDIENCES)
    assert principal.kind == "app" and principal.roles == {"User.Read.All"}


def test_user_token_claims(tokens: TokenService) -> None:
    user = {"id": "abc", "userPrincipalName": "a.b@contoso.onmicrosoft.com", "displayName": "A B"}
    token = tokens.user_token(ISSUER, f"api://{CLIENT}", user, ["Profiles.ReadWrite"])
    principal = tokens.verify(token, [f"api://{CLIENT}"])
    assert principal.kind == "user" and principal.object_id == "abc"
    assert principal.scopes == {"Profiles.ReadWrite"}
    assert principal.upn == "a.b@contoso.onmicrosoft.com"


def test_verify_rejects_bad_tokens(tokens: TokenService, signing_key: SigningKey) -> None:
    good = tokens.app_token(ISSUER, GRAPH_RESOURCE, [])
    with pytest.raises(TokenError, match="audience"):
        tokens.verify(good, [f"api://{CLIENT}"])
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(tokens.app_token(ISSUER, GRAPH_RESOURCE, [], lifetime=-10), GRAPH_AUDIENCES)
    with pytest.raises(TokenError, match="malformed"):
        tokens.verify("not-a-jwt", GRAPH_AUDIENCES)
    head, payload, signature = good.split(".")
    with pytest.raises(TokenError):
        tokens.verify(f"{head}.{payload}.{signature[::-1]}", GRAPH_AUDIENCES)
    other_tenant = TokenService(signing_key, "99999999-2222-3333-4444-555555555555", CLIENT)
    foreign = other_tenant.app_token(ISSUER, GRAPH_RESOURCE, [])
    with pytest.raises(TokenError, match="tenant"):
        tokens.verify(foreign, GRAPH_AUDIENCES)
    forged = jwt.encode(
        {
            "aud": GRAPH_RESOURCE,
            "iss": ISSUER,
            "tid": TENANT,
            "iat": int(time.time()),
            "nbf": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "secret-secret-secret-secret-secret",
        algorithm="HS256",
        headers={"kid": tokens.key.kid},
    )
    with pytest.raises(TokenError):
        tokens.verify(forged, GRAPH_AUDIENCES)
