"""Attacks on authentication and authorisation, through the gateway and on each
service's gRPC port: every one is refused with 401/403 and a reason, the refusal
is logged with that reason, and the token is neither logged nor echoed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from security_tokens import ERROR_BODIES, Authority, issue, sent

from devtools.devstack.emulator import running_emulator
from devtools.devstack.lob_client import emulator_http, emulator_token
from devtools.devstack.stack import Stack
from profilesync.v1 import (
    differ_pb2,
    differ_pb2_grpc,
    extender_pb2,
    extender_pb2_grpc,
    notifier_pb2,
    notifier_pb2_grpc,
)

OTHER_TENANT = "0b9c1f3e-7d2a-4c55-8e61-3f4a5b6c7d8e"
TokenMaker = Callable[[Stack, Authority, str], str | None]


@pytest.fixture(scope="module")
def other_tenant_authority(
    security_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A second emulator for another tenant. It shares the first one's keys, as Entra
    ID signs every tenant's tokens with the same published keys: only the issuer and
    the tenant id tell them apart."""
    state = tmp_path_factory.mktemp("other-tenant")
    for name in ("ca.pem", "ca.key", "server.pem", "server.key", "signing.key"):
        shutil.copy(security_stack.state_dir / "graph_emulator" / name, state / name)
    with running_emulator(
        state, extra=["--tenant-id", OTHER_TENANT], state_dir=state, name="other-tenant-emulator"
    ) as ready:
        yield str(ready["url"])


def _unsigned(stack: Stack, authority: Authority, upn: str) -> str:
    _, payload, _ = issue(stack, roles=["Profiles.Read"]).split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return sent(f"{header.rstrip(b'=').decode()}.{payload}.")


def _hmac_with_public_key(stack: Stack, authority: Authority, upn: str) -> str:
    # The classic key confusion: HS256 keyed with the RSA public key a verifier holds.
    public = authority.key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": authority.key.kid}).encode()
    ).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(authority.claims()).encode()).rstrip(b"=")
    signing_input = header + b"." + payload
    signature = base64.urlsafe_b64encode(
        hmac.new(public, signing_input, hashlib.sha256).digest()
    ).rstrip(b"=")
    return sent((signing_input + b"." + signature).decode())


def _another_key(kid: str | None) -> TokenMaker:
    def make(stack: Stack, authority: Authority, upn: str) -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        headers = {"kid": kid or authority.key.kid}
        return sent(jwt.encode(authority.claims(), key, algorithm="RS256", headers=headers))

    return make


# name -> (token maker, HTTP status, fragment of the reason)
ATTACKS: dict[str, tuple[TokenMaker, int, str]] = {
    "no token": (lambda s, a, u: None, 401, "needs an Authorization: Bearer <token> header"),
    "not a JWT": (lambda s, a, u: sent("not-a-jwt"), 401, "the bearer token is not a JWT"),
    "alg none": (_unsigned, 401, "token algorithm 'none' is not accepted"),
    "HS256 keyed with the public key": (_hmac_with_public_key, 401, "token algorithm 'HS256'"),
    "signed by another key, real kid": (_another_key(None), 401, "the token signature is invalid"),
    "signed by another key, unknown kid": (
        _another_key("not-a-published-key"),
        401,
        "signed by a key the authority does not publish",
    ),
    "expired": (
        lambda s, a, u: issue(s, roles=["Profiles.Read"], expiresIn=-600),
        401,
        "the token has expired",
    ),
    "not yet valid": (
        lambda s, a, u: a.sign(a.claims(nbf=int(time.time()) + 3600)),
        401,
        "the token is not valid yet",
    ),
    "no expiry": (lambda s, a, u: a.sign(a.claims(exp=None)), 401, '"exp"'),
    "wrong audience (Graph)": (
        lambda s, a, u: issue(s, roles=["Profiles.Read"], audience="https://graph.microsoft.com"),
        401,
        "the token was issued for another audience",
    ),
    "wrong audience (another app)": (
        lambda s, a, u: a.sign(a.claims(aud=f"api://{uuid.uuid4()}")),
        401,
        "the token was issued for another audience",
    ),
    "wrong tenant in a token of our issuer": (
        lambda s, a, u: a.sign(a.claims(tid=OTHER_TENANT)),
        401,
        "the token was issued for another tenant",
    ),
    "an app token without the role": (
        lambda s, a, u: issue(s, roles=["Something.Else"]),
        403,
        "needs one of the app roles Profiles.Read",
    ),
    "a user token on an application route": (
        lambda s, a, u: issue(s, user=u),
        403,
        "needs an application token",
    ),
}

# One read route per service, so every service is seen refusing.
ROUTES = {
    "extender": ("/v1/profiles/{user}", "/profilesync.v1.ProfileExtender/GetProfile"),
    "differ": ("/v1/syncs", "/profilesync.v1.SnapshotDiffer/ListSyncs"),
    "notifier": ("/v1/changes", "/profilesync.v1.LobNotifier/ListChanges"),
}


def log_messages(stack: Stack, process: str) -> list[str]:
    messages = []
    for line in stack.processes[process].log_path.read_text(errors="replace").splitlines():
        try:
            messages.append(str(json.loads(line).get("message", "")))
        except (ValueError, AttributeError):
            messages.append(line)
    return messages


def refusal_logged(stack: Stack, process: str, grpc_method: str, reason: str) -> bool:
    return any(
        message.startswith(f"refused {grpc_method}: ") and reason in message
        for message in log_messages(stack, process)
    )


def access_logged(stack: Stack, request_id: str, status: int) -> bool:
    """Whether the gateway's access log has the request, with its status (Envoy
    flushes the log every second, so this waits a little)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in stack.processes["gateway"].log_path.read_text(errors="replace").splitlines():
            if request_id in line:
                return bool(json.loads(line).get("status") == status)
        time.sleep(0.1)
    return False


def assert_not_leaked(stack: Stack, token: str | None, *texts: str) -> None:
    if not token:
        return
    signature = token.rsplit(".", 1)[-1]
    for text in (*texts, stack.logs_text()):
        assert token not in text
        if len(signature) > 8:
            assert signature not in text


def call_rest(stack: Stack, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if token == "not-a-jwt":
        headers = {"Authorization": "Bearer not-a-jwt"}
    with httpx.Client(base_url=stack.gateway_url, timeout=60, trust_env=False) as http:
        response = http.get(path, headers=headers)
    ERROR_BODIES.append(response.text)
    return response


@pytest.mark.parametrize("process", list(ROUTES))
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_through_the_gateway(
    security_stack: Stack,
    authority: Authority,
    synced_users: list[dict[str, Any]],
    attack: str,
    process: str,
) -> None:
    make, status, reason = ATTACKS[attack]
    user = synced_users[0]
    token = make(security_stack, authority, user["userPrincipalName"])
    path, grpc_method = ROUTES[process]
    response = call_rest(security_stack, path.format(user=user["id"]), token)
    assert response.status_code == status, response.text
    assert reason in response.json()["message"]
    assert "Traceback" not in response.text
    assert refusal_logged(security_stack, process, grpc_method, reason)
    assert_not_leaked(security_stack, token, response.text)


def grpc_call(stack: Stack, process: str, token: str | None, user_id: str) -> grpc.RpcError:
    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(stack.address(process)) as channel:
        try:
            if process == "extender":
                extender_pb2_grpc.ProfileExtenderStub(channel).GetProfile(
                    extender_pb2.GetProfileRequest(id=user_id), timeout=60, metadata=metadata
                )
            elif process == "differ":
                differ_pb2_grpc.SnapshotDifferStub(channel).ListSyncs(
                    differ_pb2.ListSyncsRequest(), timeout=60, metadata=metadata
                )
            else:
                notifier_pb2_grpc.LobNotifierStub(channel).ListChanges(
                    notifier_pb2.ListChangesRequest(), timeout=60, metadata=metadata
                )
        except grpc.RpcError as error:
            return error
    raise AssertionError(f"{process} answered a call that should have been refused")


@pytest.mark.parametrize("process", list(ROUTES))
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_on_the_grpc_port(
    security_stack: Stack,
    authority: Authority,
    synced_users: list[dict[str, Any]],
    attack: str,
    process: str,
) -> None:
    """The services do not rely on the gateway: their own ports refuse the same."""
    make, status, reason = ATTACKS[attack]
    user = synced_users[1]
    token = make(security_stack, authority, user["userPrincipalName"])
    error = grpc_call(security_stack, process, token, user["id"])
    expected = (
        grpc.StatusCode.UNAUTHENTICATED if status == 401 else grpc.StatusCode.PERMISSION_DENIED
    )
    assert error.code() == expected, error.details()
    assert reason in (error.details() or "")
    ERROR_BODIES.append(error.details() or "")
    assert_not_leaked(security_stack, token, error.details() or "")


def test_a_token_from_another_tenants_authority_is_refused(
    security_stack: Stack, other_tenant_authority: str, synced_users: list[dict[str, Any]]
) -> None:
    ca_file = security_stack.ca_file  # the copied CA signed the second emulator's certificate
    token = sent(emulator_token(other_tenant_authority, ca_file, roles=["Profiles.Read"]))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tid"] == OTHER_TENANT
    for process, (path, grpc_method) in ROUTES.items():
        response = call_rest(security_stack, path.format(user=synced_users[0]["id"]), token)
        assert response.status_code == 401, response.text
        reason = "the token was issued by another authority"
        assert response.json()["message"] == reason
        assert refusal_logged(security_stack, process, grpc_method, reason)
        assert_not_leaked(security_stack, token, response.text)


def test_the_crafted_tokens_differ_from_a_valid_one_only_in_the_attack(
    security_stack: Stack, authority: Authority, synced_users: list[dict[str, Any]]
) -> None:
    """The same signing, untouched, is accepted: each refusal above is for its own reason."""
    token = authority.sign(authority.claims())
    for path, _ in ROUTES.values():
        response = call_rest(security_stack, path.format(user=synced_users[0]["id"]), token)
        assert response.status_code == 200, response.text


def patch(stack: Stack, user_id: str, token: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=stack.gateway_url, timeout=60, trust_env=False) as http:
        response = http.patch(
            f"/v1/profiles/{user_id}", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    ERROR_BODIES.append(response.text)
    return response


def graph_about_me(stack: Stack, user_id: str) -> str:
    with emulator_http(stack.emulator_url, stack.ca_file) as client:
        return str(client.get(f"/_emulator/users/{user_id}").json().get("aboutMe"))


def test_an_app_token_on_the_update_route_is_refused(
    security_stack: Stack, synced_users: list[dict[str, Any]]
) -> None:
    target = synced_users[2]
    before = graph_about_me(security_stack, target["id"])
    token = issue(security_stack, roles=["Profiles.Read", "Profiles.Sync", "Subscribers.Manage"])
    response = patch(security_stack, target["id"], token, {"aboutMe": "written by an app"})
    assert response.status_code == 403
    reason = "UpdateProfile needs a delegated user token; an application token was sent"
    assert response.json()["message"] == reason
    assert graph_about_me(security_stack, target["id"]) == before
    assert refusal_logged(
        security_stack, "extender", "/profilesync.v1.ProfileExtender/UpdateProfile", reason
    )
    assert_not_leaked(security_stack, token, response.text)


@pytest.mark.parametrize(
    "scopes",
    [[], ["Profiles.ReadWrite.All"], ["profiles.readwrite"], ["User.Read", "Profiles.Read"]],
    ids=["no scope", "a longer name", "another case", "other scopes"],
)
def test_a_user_token_without_the_apps_delegated_scope_cannot_update(
    security_stack: Stack, synced_users: list[dict[str, Any]], scopes: list[str]
) -> None:
    """An API called on behalf of a user must find its scope in `scp`
    (https://learn.microsoft.com/entra/identity-platform/scenario-protected-web-api-verification-scope-app-roles):
    the exact name, not one that merely contains it."""
    me = synced_users[5]
    before = graph_about_me(security_stack, me["id"])
    token = issue(security_stack, user=me["userPrincipalName"], scopes=scopes)
    response = patch(security_stack, me["id"], token, {"aboutMe": "without the scope"})
    assert response.status_code == 403, response.text
    reason = (
        "UpdateProfile needs a user token with the delegated scope Profiles.ReadWrite; "
        f"the token has {', '.join(sorted(scopes)) or 'no scope'}"
    )
    assert response.json()["message"] == reason
    assert graph_about_me(security_stack, me["id"]) == before
    assert refusal_logged(
        security_stack, "extender", "/profilesync.v1.ProfileExtender/UpdateProfile", reason
    )
    assert_not_leaked(security_stack, token, response.text)


def test_a_user_cannot_update_someone_else(
    security_stack: Stack, synced_users: list[dict[str, Any]]
) -> None:
    me, other = synced_users[3], synced_users[4]
    before = graph_about_me(security_stack, other["id"])
    token = issue(security_stack, user=me["userPrincipalName"])
    response = patch(security_stack, other["id"], token, {"aboutMe": "not mine to change"})
    assert response.status_code == 403, response.text
    assert response.json()["message"]
    assert graph_about_me(security_stack, other["id"]) == before
    # Graph refused the write: the extender answers 403 without logging a reason of
    # its own; the gateway's access log has the refused call.
    assert access_logged(security_stack, response.headers["x-request-id"], 403)
    assert_not_leaked(security_stack, token, response.text)
    # The user's own profile, with the same token, is theirs to change.
    mine = patch(security_stack, me["id"], token, {"aboutMe": "mine to change"})
    assert mine.status_code == 200, mine.text


def test_the_gateway_never_logs_the_authorization_header(security_stack: Stack) -> None:
    token = issue(security_stack, roles=["Profiles.Read"])
    marker = f"/v1/syncs?pageSize=7&x={uuid.uuid4().hex}"
    with httpx.Client(base_url=security_stack.gateway_url, timeout=60, trust_env=False) as http:
        # An unknown parameter: refused by the gateway itself, after logging the request.
        http.get(marker, headers={"Authorization": f"Bearer {token}"})
    gateway_log = security_stack.processes["gateway"].log_path
    deadline = time.monotonic() + 30  # Envoy flushes its access log every second
    while marker not in gateway_log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the request never reached the access log"
        time.sleep(0.1)
    assert_not_leaked(security_stack, token)
