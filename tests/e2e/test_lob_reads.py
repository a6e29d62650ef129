"""LOB reads come from the store the syncs keep, and a new LOB app bootstraps
from a consistent listing, then follows changes from the listing's cursor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.graph_users import graph_users
from devtools.devstack.lob_client import LobClient, edit_in_delve, emulator_http, emulator_token
from devtools.devstack.stack import Stack, StackOptions


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Two committed snapshots kept: a listing outlives one later sync, not two.
    options = StackOptions(
        state_dir=tmp_path_factory.mktemp("reads"),
        users=30,
        seed=11,
        env={"SNAPSHOT_RETENTION": "2"},
    )
    with Stack(options) as running:
        yield running


@pytest.fixture(scope="module")
def lob(stack: Stack) -> Iterator[LobClient]:
    with LobClient.on_stack(stack) as client:
        yield client


def graph_requests(stack: Stack) -> int:
    with emulator_http(stack.emulator_url, stack.ca_file) as admin:
        return int(admin.get("/_emulator/stats").json()["requests"])


def test_reads_before_any_sync_come_from_graph_once(stack: Stack, lob: LobClient) -> None:
    [user] = graph_users(stack.emulator_url, stack.ca_file, 1)
    user_id = user["id"]
    before = graph_requests(stack)
    first = lob.http.get(f"/v1/profiles/{user_id}")
    assert first.status_code == 200, first.text
    assert graph_requests(stack) > before
    after_first = graph_requests(stack)
    again = lob.http.get(f"/v1/profiles/{user_id}")
    assert again.json() == first.json()
    assert graph_requests(stack) == after_first, "a read-through profile is read from Graph once"


def test_after_a_sync_reads_cost_no_graph_request(stack: Stack, lob: LobClient) -> None:
    assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    listed, _ = lob.bootstrap()
    by_id = {p["id"]: p for p in listed}
    before = graph_requests(stack)
    ids = list(by_id)
    for index in range(100):
        user_id = ids[index % len(ids)]
        response = lob.http.get(f"/v1/profiles/{user_id}")
        assert response.status_code == 200, response.text
        profile = response.json()
        assert profile["version"] == by_id[user_id]["version"]
        assert profile["aboutMe"] == by_id[user_id]["aboutMe"]
        assert profile["syncedAt"] >= by_id[user_id]["fetchTime"]
    batch = lob.http.post("/v1/profiles:batchGet", json={"ids": [ids[0], ids[0], ids[1]]})
    assert [p["id"] for p in batch.json()["profiles"]] == [ids[0], ids[1]]
    by_upn = lob.http.get(f"/v1/profiles/{by_id[ids[2]]['userPrincipalName']}")
    assert by_upn.json()["id"] == ids[2]
    assert graph_requests(stack) == before, "reads from the store spend no Graph request"

    fresh = lob.http.get(f"/v1/profiles/{ids[0]}", params={"source": "GRAPH"})
    assert fresh.status_code == 200, fresh.text
    assert graph_requests(stack) == before + 1


def test_a_lob_edit_is_read_back_at_once(stack: Stack, lob: LobClient) -> None:
    listed, _ = lob.bootstrap()
    user = listed[0]
    user_token = emulator_token(stack.emulator_url, stack.ca_file, user=user["userPrincipalName"])
    saved = lob.update_profile(user["id"], user_token, aboutMe="Edited in the LOB app")
    assert saved.status_code == 200, saved.text
    before = graph_requests(stack)
    read = lob.http.get(f"/v1/profiles/{user['id']}").json()
    assert read["aboutMe"] == "Edited in the LOB app"
    assert read["version"] == saved.json()["version"]
    assert graph_requests(stack) == before


def test_a_bootstrap_then_the_changes_after_its_cursor_hold_exactly_what_followed(
    stack: Stack, lob: LobClient
) -> None:
    assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    listed, cursor = lob.bootstrap(page_size=7)
    assert len(listed) == len({p["id"] for p in listed}) == 30
    assert lob.changes(cursor)[0] == [], "nothing after the cursor yet"

    edited = listed[5]
    edit_in_delve(stack.emulator_url, stack.ca_file, edited["id"], aboutMe="Back from leave")
    assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    events, _ = lob.changes(cursor)
    assert [(e["userId"], e["kind"]) for e in events] == [(edited["id"], "UPDATED")]
    assert events[0]["after"]["aboutMe"] == "Back from leave"


def test_a_listing_stays_on_its_sync_while_others_commit(stack: Stack, lob: LobClient) -> None:
    first = lob.http.get("/v1/profiles", params={"pageSize": 10}).json()
    target = first["profiles"][0]
    edit_in_delve(stack.emulator_url, stack.ca_file, target["id"], aboutMe="Edited mid-listing")
    assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    rest: list[dict[str, Any]] = []
    token = first["nextPageToken"]
    while token:
        page = lob.http.get("/v1/profiles", params={"pageSize": 10, "pageToken": token}).json()
        assert page["changesCursor"] == first["changesCursor"]
        rest.extend(page["profiles"])
        token = page.get("nextPageToken", "")
    assert len(first["profiles"]) + len(rest) == 30
    events, _ = lob.changes(first["changesCursor"])
    assert [e["userId"] for e in events] == [target["id"]]


def test_a_listing_whose_sync_is_no_longer_kept_says_to_start_again(
    stack: Stack, lob: LobClient
) -> None:
    first = lob.http.get("/v1/profiles", params={"pageSize": 10}).json()
    for aboutMe in ("Retention one", "Retention two"):
        user = first["profiles"][1]["id"]
        edit_in_delve(stack.emulator_url, stack.ca_file, user, aboutMe=aboutMe)
        assert lob.sync_and_wait()["state"] == "SUCCEEDED"
    # SNAPSHOT_RETENTION is 2: the snapshot this listing reads was pruned.
    page = lob.http.get(
        "/v1/profiles", params={"pageSize": 10, "pageToken": first["nextPageToken"]}
    )
    assert page.status_code == 400, page.text
    assert page.json()["code"] == 9, page.text  # FAILED_PRECONDITION
    assert "start the listing again without a pageToken" in page.json()["message"]
    restarted = lob.http.get("/v1/profiles", params={"pageSize": 10})
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["changesCursor"] != first["changesCursor"]


def test_bad_page_tokens_and_sizes_are_refused_by_name(lob: LobClient) -> None:
    for params, field in (
        ({"pageToken": "not-a-token"}, "pageToken"),
        ({"pageSize": 1001}, "page_size"),
    ):
        response = lob.http.get("/v1/profiles", params=params)
        assert response.status_code == 400, response.text
        assert field.lower().replace("_", "") in response.text.lower().replace("_", "")


def test_an_unknown_user_is_404(lob: LobClient) -> None:
    response: httpx.Response = lob.http.get("/v1/profiles/00000000-0000-0000-0000-00000000dead")
    assert response.status_code == 404
