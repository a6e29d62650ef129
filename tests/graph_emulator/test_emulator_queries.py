"""Query parameters on the users collection.

- $filter, $top, $count: "Use query parameters to customize responses"
  https://learn.microsoft.com/en-us/graph/query-parameters
- ConsistencyLevel, $count and advanced-only operators: "Advanced query capabilities on
  Microsoft Entra ID (directory) objects" https://learn.microsoft.com/en-us/graph/aad-advanced-queries
- $search: "Use the $search query parameter"
  https://learn.microsoft.com/en-us/graph/search-query-parameter#using-search-on-directory-object-collections
- Which property supports which operator: the user resource type
  https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0#properties
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from emulator_helpers import assert_graph_error

from devtools.graph_emulator.query_search import tokenize
from devtools.graph_emulator.state import EmulatorState

EVENTUAL = {"ConsistencyLevel": "eventual"}


def everyone(state: EmulatorState) -> list[dict[str, Any]]:
    return state.store.page_after(None, 10_000)[0]


async def list_all(
    client: httpx.AsyncClient, headers: dict[str, str], query: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every user a query returns (following nextLink), and the pages' bodies."""
    url: str | None = f"/v1.0/users?{query}"
    users: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        users.extend(body["value"])
        url = body.get("@odata.nextLink")
    return users, pages


def q(text: str) -> str:
    return quote(text, safe="=&$,")


async def test_filter_eq_and_startswith_by_default(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """eq and startsWith on userPrincipalName, displayName and mail work without advanced
    query parameters; string comparisons ignore case, as the directory does."""
    target = everyone(state)[17]
    users, _ = await list_all(
        client,
        app_headers,
        q(f"$filter=userPrincipalName eq '{target['userPrincipalName'].upper()}'"),
    )
    assert [u["id"] for u in users] == [target["id"]]

    first = target["displayName"][:2]
    users, _ = await list_all(
        client, app_headers, q(f"$filter=startswith(displayName,'{first.lower()}')&$top=5")
    )
    expected = [
        u["id"] for u in everyone(state) if u["displayName"].lower().startswith(first.lower())
    ]
    assert [u["id"] for u in users] == expected and len(expected) > 1

    users, _ = await list_all(
        client, app_headers, q(f"$filter=mail eq '{target['mail']}' or startsWith(mail, 'zz')")
    )
    assert target["id"] in {u["id"] for u in users}

    users, _ = await list_all(
        client,
        app_headers,
        q(f"$filter=department eq '{target['department']}' and accountEnabled eq true&$select=id"),
    )
    assert {u["id"] for u in users} == {
        u["id"]
        for u in everyone(state)
        if u["department"] == target["department"] and u["accountEnabled"]
    }


async def test_filter_in_operator(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    a, b = everyone(state)[3], everyone(state)[9]
    users, _ = await list_all(client, app_headers, q(f"$filter=id in ('{a['id']}', '{b['id']}')"))
    assert sorted(u["id"] for u in users) == sorted([a["id"], b["id"]])


@pytest.mark.parametrize(
    "clause",
    [
        "endswith(mail,'@contoso.onmicrosoft.com')",
        "displayName ne 'x'",
        "not startswith(displayName,'A')",
        "officeLocation eq 'Remote'",
        "jobTitle eq null",
    ],
)
async def test_advanced_operators_need_consistency_level_and_count(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str], clause: str
) -> None:
    """endsWith, ne, not, eq null and some properties work only as advanced queries:
    ConsistencyLevel: eventual and $count=true, else 400 Request_UnsupportedQuery."""
    plain = await client.get(f"/v1.0/users?{q('$filter=' + clause)}", headers=app_headers)
    assert_graph_error(plain, 400, "Request_UnsupportedQuery")
    assert "ConsistencyLevel:eventual" in plain.json()["error"]["message"]
    header_only = await client.get(
        f"/v1.0/users?{q('$filter=' + clause)}", headers={**app_headers, **EVENTUAL}
    )
    assert_graph_error(header_only, 400, "Request_UnsupportedQuery")
    advanced = await client.get(
        f"/v1.0/users?{q('$filter=' + clause + '&$count=true')}",
        headers={**app_headers, **EVENTUAL},
    )
    assert advanced.status_code == 200, advanced.text
    assert advanced.json()["@odata.count"] >= len(advanced.json()["value"])


async def test_advanced_filters_select_the_right_users(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    headers = {**app_headers, **EVENTUAL}
    users, pages = await list_all(
        client, headers, q("$filter=not startswith(displayName,'A')&$count=true&$top=50")
    )
    expected = [u for u in everyone(state) if not u["displayName"].lower().startswith("a")]
    assert [u["id"] for u in users] == [u["id"] for u in expected]
    assert pages[0]["@odata.count"] == len(expected)


@pytest.mark.parametrize(
    ("clause", "status", "code"),
    [
        ("skills eq 'Go'", 400, "Request_UnsupportedQuery"),  # not filterable
        ("aboutMe eq 'x'", 400, "Request_UnsupportedQuery"),
        ("shoeSize eq 42", 400, "Request_BadRequest"),
        ("displayName eq", 400, "BadRequest"),
        ("displayName eq 'unterminated", 400, "BadRequest"),
        ("(displayName eq 'x'", 400, "BadRequest"),
        ("displayName xx 'x'", 400, "BadRequest"),
        ("contains(displayName,'x')", 400, "Request_UnsupportedQuery"),
        ("displayName gt 'x'", 400, "Request_UnsupportedQuery"),
        ("(" * 60 + "displayName eq 'x'" + ")" * 60, 400, "BadRequest"),
        ("displayName eq 'x' and", 400, "BadRequest"),
    ],
)
async def test_bad_filters(
    client: httpx.AsyncClient, app_headers: dict[str, str], clause: str, status: int, code: str
) -> None:
    """A filter Graph cannot run is a 400 naming the property or the syntax error."""
    response = await client.get(f"/v1.0/users?{q('$filter=' + clause)}", headers=app_headers)
    assert_graph_error(response, status, code)


async def test_count_needs_consistency_level_and_is_on_the_first_page_only(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """Without ConsistencyLevel, $count=true is silently ignored; with it, @odata.count
    comes on the first page only."""
    _, pages = await list_all(client, app_headers, "$count=true&$top=100")
    assert all("@odata.count" not in page for page in pages)
    _, pages = await list_all(client, {**app_headers, **EVENTUAL}, "$count=true&$top=100")
    assert len(pages) == 3
    assert pages[0]["@odata.count"] == len(state.store) == 250
    assert all("@odata.count" not in page for page in pages[1:])
    bad = await client.get("/v1.0/users?$count=maybe", headers=app_headers)
    assert_graph_error(bad, 400)


async def test_count_segment(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """GET /users/$count answers a plain number, only as an advanced query."""
    refused = await client.get("/v1.0/users/$count", headers=app_headers)
    assert_graph_error(refused, 400, "Request_BadRequest")
    assert refused.json()["error"]["message"] == "$count is not currently supported."
    response = await client.get("/v1.0/users/$count", headers={**app_headers, **EVENTUAL})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "250"
    filtered = await client.get(
        f"/v1.0/users/$count?{q('$filter=endswith(mail,' + chr(39) + 'x' + chr(39) + ')')}",
        headers={**app_headers, **EVENTUAL},
    )
    assert filtered.text == str(sum(1 for u in everyone(state) if u["mail"].endswith("x")))


async def test_search_needs_consistency_level(
    client: httpx.AsyncClient, app_headers: dict[str, str]
) -> None:
    response = await client.get(
        f"/v1.0/users?{q('$search=' + chr(34) + 'displayName:a' + chr(34))}", headers=app_headers
    )
    assert_graph_error(response, 400, "Request_UnsupportedQuery")
    assert "'ConsistencyLevel: eventual'" in response.json()["error"]["message"]


async def test_search_by_display_name_tokens_and_by_prefix(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """displayName is searched by words, in any order, each matching the start of a word;
    other properties by prefix. Clauses combine with AND / OR."""
    headers = {**app_headers, **EVENTUAL}
    target = everyone(state)[42]
    first, last = target["givenName"], target["surname"]
    search = f'"displayName:{last[:3].lower()} {first}"'
    users, _ = await list_all(client, headers, q(f"$search={search}"))
    ids = {u["id"] for u in users}
    assert target["id"] in ids
    for user in users:
        words = tokenize(user["displayName"])
        assert any(w.startswith(first.lower()) for w in words)
    mail_prefix = target["mail"][:5]
    search = f'"mail:{mail_prefix}" OR "displayName:{first}"'
    users, _ = await list_all(client, headers, q(f"$search={search}&$select=id,mail,displayName"))
    assert all(
        u["mail"].lower().startswith(mail_prefix.lower())
        or any(w.startswith(first.lower()) for w in tokenize(u["displayName"]))
        for u in users
    )
    search = f'"mail:{mail_prefix}" AND ("displayName:{first}" OR "displayName:zzzz")'
    both, _ = await list_all(client, headers, q(f"$search={search}&$filter=accountEnabled eq true"))
    assert {u["id"] for u in both} <= {u["id"] for u in users}


def test_search_tokenization_follows_graph() -> None:
    assert tokenize("hello world") == {"hello", "world"}
    assert tokenize("HelloWorld") == {"hello", "world"}
    assert tokenize("HELLOworld") == {"helloworld"}
    assert tokenize("hello.world") >= {"hello", "world", "helloworld"}
    assert tokenize("hello123world") >= {"hello", "123", "world"}
    assert tokenize("李四(David Li)") >= {"李四", "david", "li"}


@pytest.mark.parametrize(
    "search",
    [
        '"displayName"',  # no property
        '"displayName:a" and "mail:b"',  # lower-case operator
        '"displayName:a',  # unterminated
        "displayName:a",  # not quoted
        '"skills:Go"',  # not searchable
        '("displayName:a"',
    ],
)
async def test_bad_searches(
    client: httpx.AsyncClient, app_headers: dict[str, str], search: str
) -> None:
    response = await client.get(
        f"/v1.0/users?{q('$search=' + search)}", headers={**app_headers, **EVENTUAL}
    )
    assert_graph_error(response, 400)


async def test_next_link_keeps_the_query(
    client: httpx.AsyncClient, state: EmulatorState, app_headers: dict[str, str]
) -> None:
    """@odata.nextLink carries $filter/$select/$top and an opaque $skiptoken."""
    headers = {**app_headers, **EVENTUAL}
    users, pages = await list_all(
        client, headers, q("$filter=startswith(displayName,'a')&$select=id,displayName&$top=7")
    )
    assert len(pages) > 1
    assert all(set(u) == {"id", "displayName"} for u in users)
    assert [u["id"] for u in users] == [
        u["id"] for u in everyone(state) if u["displayName"].lower().startswith("a")
    ]
    assert (
        "$filter=" in pages[0]["@odata.nextLink"] and "$skiptoken=" in pages[0]["@odata.nextLink"]
    )
