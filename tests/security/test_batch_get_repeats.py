"""`batchGet` with repeated ids reads each user from Graph once (`source: GRAPH`;
from the synced store, the default, it reads Graph not at all).

Before, 100 copies of one id cost 100 Graph reads; about 35 such calls per 10 s
drained the tenant's resource-unit quota that the syncs share. Graph's reads are
counted by the emulator (`GET /_emulator/stats`, docs/graph-emulator.md). A user
is addressed by `id` or `userPrincipalName`
(https://learn.microsoft.com/en-us/graph/api/user-get), both matched without regard
to case (the emulator's store does the same), so "ABC" and "abc" are one id.
"""

from __future__ import annotations

from typing import Any

import httpx
from security_tokens import ERROR_BODIES

from devtools.devstack.lob_client import LobClient, emulator_http
from devtools.devstack.stack import Stack

MISSING = "00000000-0000-0000-0000-00000000dead"


def _graph_reads(
    stack: Stack, ids: list[str], lob: LobClient, source: str = "GRAPH"
) -> tuple[httpx.Response, int]:
    """The answer to `batchGet(ids)` and the user reads Graph served for it."""
    with emulator_http(stack.emulator_url, stack.ca_file) as emulator:
        emulator.delete("/_emulator/stats").raise_for_status()
        response = lob.http.post("/v1/profiles:batchGet", json={"ids": ids, "source": source})
        if response.status_code >= 400:
            ERROR_BODIES.append(response.text)
        stats = emulator.get("/_emulator/stats").json()
    return response, int(stats["batchItems"])


def test_one_id_a_hundred_times_costs_one_graph_read(
    security_stack: Stack, lob: LobClient, synced_users: list[dict[str, Any]]
) -> None:
    user = synced_users[0]
    response, reads = _graph_reads(security_stack, [user["id"]] * 100, lob)
    assert response.status_code == 200, response.text
    assert [p["id"] for p in response.json()["profiles"]] == [user["id"]]
    assert reads == 1
    from_store, store_reads = _graph_reads(security_stack, [user["id"]] * 100, lob, "STORE")
    assert [p["id"] for p in from_store.json()["profiles"]] == [user["id"]]
    assert store_reads == 0


def test_repeats_are_merged_and_answered_in_first_mention_order(
    security_stack: Stack, lob: LobClient, synced_users: list[dict[str, Any]]
) -> None:
    a, b, c = synced_users[1], synced_users[2], synced_users[3]
    ids = [
        b["id"],
        a["id"],
        b["id"].upper(),  # the same object id in another case
        MISSING,
        a["id"],
        c["userPrincipalName"],
        c["userPrincipalName"].upper(),
        MISSING.upper(),
        c["id"],  # c again, by object id: a second read, but listed once
    ]
    response, reads = _graph_reads(security_stack, ids, lob)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [p["id"] for p in answer["profiles"]] == [b["id"], a["id"], c["id"]]
    assert answer["notFound"] == [MISSING]
    # b, a, MISSING, c's name, c's object id: five distinct ids.
    assert reads == 5
