"""Reading users: "List users" (https://learn.microsoft.com/en-us/graph/api/user-list),
"Get user" (https://learn.microsoft.com/en-us/graph/api/user-get), paging
(https://learn.microsoft.com/en-us/graph/paging) and error responses
(https://learn.microsoft.com/en-us/graph/errors).
"""

from __future__ import annotations

import httpx
import pytest
from emulator_helpers import BASE_URL, assert_graph_error, bearer, first_user, mint, nth_user

from devtools.graph_emulator.defaults import GRAPH_APP_ID, GRAPH_RESOURCE
from devtools.graph_emulator.schema import DEFAULT_PROPERTIES
from devtools.graph_emulator.signing_key import generate_signing_key
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.tokens import TokenService, issuer_for

PROFILE_SELECT = "id,aboutMe,skills,pastProjects,schools,interests,responsibilities"


async def collect_ids(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    url: str,
    between_pages: list[str] | None = None,
) -> list[str]:
    ids: list[str] = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        ids.extend(u["id"] for u in body["value"])
        next_url = body.get("@odata.nextLink")
        if next_url and between_pages:
            await client.post("/_emulator/users", json={})
            await client.delete(f"/_emulator/users/{between_pages.pop()}")
    return ids


async def test_paging_sees_every_user_once(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    pages: list[int] = []
    url: str | None = "/v1.0/users?$top=100"
    ids: list[str] = []
    while url:
        body = (await client.get(url, headers=app_headers)).json()
        assert body["@odata.context"] == f"{BASE_URL}/v1.0/$metadata#users"
        pages.append(len(body["value"]))
        ids.extend(u["id"] for u in body["value"])
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(f"{BASE_URL}/v1.0/users?") and "$skiptoken=" in url
    assert pages == [100, 100, 50]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == {u["id"] for u in state.store.page_after(None, 1000)[0]}


async def test_paging_is_stable_while_users_change(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    everyone = [u["id"] for u in state.store.page_after(None, 1000)[0]]
    doomed = [everyone[-1], everyone[-2]]  # deleted before their page is read
    survivors = set(everyone) - set(doomed)
    ids = await collect_ids(client, app_headers, "/v1.0/users?$top=100", list(doomed))
    assert len(ids) == len(set(ids))
    assert survivors <= set(ids)
    assert not set(doomed) & set(ids)


async def test_default_properties_and_select(
    client: httpx.AsyncClient, app_headers: dict[str, str]
) -> None:
    body = (await client.get("/v1.0/users?$top=2", headers=app_headers)).json()
    assert list(body["value"][0]) == list(DEFAULT_PROPERTIES)
    body = (
        await client.get(
            "/v1.0/users?$top=2&$select=id,displayName,department", headers=app_headers
        )
    ).json()
    assert body["@odata.context"].endswith("$metadata#users(id,displayName,department)")
    assert set(body["value"][0]) == {"id", "displayName", "department"}
    # Without the `$` prefix too, as Graph v1.0 allows.
    body = (await client.get("/v1.0/users?top=1&select=mail", headers=app_headers)).json()
    assert set(body["value"][0]) == {"mail"} and len(body["value"]) == 1


@pytest.mark.parametrize(
    "prop",
    [
        "skills",
        "aboutMe",
        "pastProjects",
        "schools",
        "interests",
        "responsibilities",
        "birthday",
        "hireDate",
        "mySite",
        "preferredName",
    ],
)
async def test_list_select_of_profile_property_is_not_implemented(
    client: httpx.AsyncClient, app_headers: dict[str, str], prop: str
) -> None:
    """aboutMe, skills, ... are returned only on $select for a single user; selecting them
    on the list answers 501. https://learn.microsoft.com/en-us/graph/api/user-list#optional-query-parameters
    """
    response = await client.get(f"/v1.0/users?$select=id,{prop}", headers=app_headers)
    assert_graph_error(response, 501, "NotImplemented")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("$top=0", "Invalid page size"),
        ("$top=1000", "Invalid page size"),
        ("$top=abc", "$top"),
        ("$top=-5", "$top"),
        (
            "$select=id,shoeSize",
            "Could not find a property named 'shoeSize' on type 'microsoft.graph.user'",
        ),
        ("$skiptoken=bm9wZQ", "skiptoken"),
        ("$skiptoken=%%%", "skiptoken"),
        ("$top=5&$top=6", "more than once"),
        ("$orderby=createdDateTime", "$orderby"),
        ("$expand=manager", "$expand"),
    ],
)
async def test_list_bad_queries(
    client: httpx.AsyncClient, app_headers: dict[str, str], query: str, fragment: str
) -> None:
    """$top takes 1 to 999 on users; anything else is a 400 naming the problem.
    https://learn.microsoft.com/en-us/graph/paging
    """
    response = await client.get(f"/v1.0/users?{query}", headers=app_headers)
    assert_graph_error(response, 400)
    assert fragment in response.json()["error"]["message"]


async def test_single_user_with_profile_select(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    user = first_user(state)
    response = await client.get(
        f"/v1.0/users/{user['id']}?$select={PROFILE_SELECT}", headers=app_headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == (f"{BASE_URL}/v1.0/$metadata#users({PROFILE_SELECT})/$entity")
    for name in PROFILE_SELECT.split(","):
        assert body[name] == user[name]
    # By user principal name, case-insensitively, with the default property set.
    response = await client.get(
        f"/v1.0/users/{user['userPrincipalName'].upper()}", headers=app_headers
    )
    assert response.json()["id"] == user["id"]
    assert "skills" not in response.json()


async def test_unicode_survives_round_trip(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    user = first_user(state)
    await client.post(
        f"/_emulator/users/{user['id']}/edit",
        json={"skills": ["Résumé writing", "Café management", "日本語"]},
    )
    response = await client.get(f"/v1.0/users/{user['id']}?$select=skills", headers=app_headers)
    assert "Résumé".encode() in response.content  # raw UTF-8, not \u escapes
    assert response.json()["skills"] == ["Résumé writing", "Café management", "日本語"]


async def test_unknown_user_404(client: httpx.AsyncClient, app_headers: dict[str, str]) -> None:
    response = await client.get(
        "/v1.0/users/nobody@contoso.onmicrosoft.com",
        headers={**app_headers, "client-request-id": "abc-123"},
    )
    assert_graph_error(response, 404, "Request_ResourceNotFound")
    error = response.json()["error"]
    assert error["message"] == (
        "Resource 'nobody@contoso.onmicrosoft.com' does not exist or one of its queried "
        "reference-property objects are not present."
    )
    assert error["innerError"]["client-request-id"] == "abc-123"
    assert response.headers["client-request-id"] == "abc-123"


async def test_authentication_required(client: httpx.AsyncClient, state: EmulatorState) -> None:
    """No token, a bad one, an expired one or one for another audience: 401
    InvalidAuthenticationToken. https://learn.microsoft.com/en-us/graph/errors
    """
    assert_graph_error(await client.get("/v1.0/users"), 401, "InvalidAuthenticationToken")
    bad = await client.get("/v1.0/users", headers=bearer("not.a.token"))
    assert_graph_error(bad, 401, "InvalidAuthenticationToken")
    basic = await client.get("/v1.0/users", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_graph_error(basic, 401, "InvalidAuthenticationToken")
    # A token for the profile-sync API is not a Graph token.
    wrong_aud = await mint(client, roles=["User.Read.All"])
    assert_graph_error(
        await client.get("/v1.0/users", headers=bearer(wrong_aud)),
        401,
        "InvalidAuthenticationToken",
    )
    expired = await mint(client, roles=["User.Read.All"], audience=GRAPH_RESOURCE, expiresIn=-5)
    response = await client.get("/v1.0/users", headers=bearer(expired))
    assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert "expired" in response.json()["error"]["message"]
    # Graph's app id is an accepted audience as well.
    by_app_id = await mint(client, roles=["User.Read.All"], audience=GRAPH_APP_ID)
    assert (await client.get("/v1.0/users", headers=bearer(by_app_id))).status_code == 200


async def test_permissions(client: httpx.AsyncClient, state: EmulatorState) -> None:
    """Reading users needs an app role such as User.Read.All or a delegated scope; without
    one, 403 Authorization_RequestDenied.
    https://learn.microsoft.com/en-us/graph/api/user-list#permissions
    """
    no_roles = await mint(client, roles=[], audience=GRAPH_RESOURCE)
    assert_graph_error(
        await client.get("/v1.0/users", headers=bearer(no_roles)),
        403,
        "Authorization_RequestDenied",
    )
    me, other = first_user(state), nth_user(state, 1)
    self_only = await mint(
        client, user=me["userPrincipalName"], audience=GRAPH_RESOURCE, scopes=["User.Read"]
    )
    assert (
        await client.get(f"/v1.0/users/{me['id']}", headers=bearer(self_only))
    ).status_code == 200
    assert_graph_error(
        await client.get(f"/v1.0/users/{other['id']}", headers=bearer(self_only)), 403
    )


async def test_me(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    user = nth_user(state, 3)
    token = await mint(client, user=user["userPrincipalName"], audience=GRAPH_RESOURCE)
    response = await client.get("/v1.0/me?$select=id,skills", headers=bearer(token))
    assert response.json() == {
        "@odata.context": f"{BASE_URL}/v1.0/$metadata#users(id,skills)/$entity",
        "id": user["id"],
        "skills": user["skills"],
    }
    assert_graph_error(await client.get("/v1.0/me", headers=app_headers), 400)


async def test_unknown_graph_route(client: httpx.AsyncClient, app_headers: dict[str, str]) -> None:
    assert_graph_error(await client.get("/v1.0/groups", headers=app_headers), 404)
    assert_graph_error(await client.delete("/v1.0/users/x", headers=app_headers), 405)
    assert_graph_error(await client.get("/nothing/here"), 404)
    assert_graph_error(await client.get("/_emulator/nothing"), 404)


async def test_tokens_of_another_tenant_or_signer_are_refused(
    client: httpx.AsyncClient, state: EmulatorState
) -> None:
    """Graph checks the signature and the tenant as well as audience and expiry.
    https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-tokens
    """
    other_tenant = "99999999-2222-3333-4444-555555555555"
    foreign = TokenService(state.tokens.key, other_tenant, state.client_id).app_token(
        issuer_for(BASE_URL, other_tenant), GRAPH_RESOURCE, ["User.Read.All"]
    )
    response = await client.get("/v1.0/users", headers=bearer(foreign))
    assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert "tenant" in response.json()["error"]["message"]
    forged = TokenService(generate_signing_key(), state.tenant_id, state.client_id).app_token(
        issuer_for(BASE_URL, state.tenant_id), GRAPH_RESOURCE, ["User.Read.All"]
    )
    response = await client.get("/v1.0/users", headers=bearer(forged))
    assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
