"""Search through the gateway: synced content is findable, edits move it,
LOB updates are findable at once."""

from __future__ import annotations

from typing import Any

from devtools.devstack.lob_client import LobClient, edit_in_delve, emulator_token
from devtools.devstack.stack import Stack


def search(lob: LobClient, query: str, **params: Any) -> dict[str, Any]:
    response = lob.http.get("/v1/profiles:search", params={"query": query, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


def found_ids(lob: LobClient, query: str) -> set[str]:
    return {r["profile"]["id"] for r in search(lob, query, pageSize=100).get("results", [])}


def test_a_synced_skill_is_findable_and_an_edit_moves_it(
    stack: Stack, lob: LobClient, baseline_cursor: str
) -> None:
    target = lob.changes()[0][30]["after"]
    edit_in_delve(stack.emulator_url, stack.ca_file, target["id"], skills=["Quasarology"])
    assert target["id"] not in found_ids(lob, "skills:quasarology")
    lob.sync_and_wait()
    result = search(lob, "skills:Quasarology")
    assert [r["profile"]["id"] for r in result["results"]] == [target["id"]]
    assert "skills" in result["results"][0]["matchedFields"]

    edit_in_delve(stack.emulator_url, stack.ca_file, target["id"], skills=["Nebulametry"])
    lob.sync_and_wait()
    assert found_ids(lob, "skills:quasarology") == set()
    assert found_ids(lob, "nebulam*") == {target["id"]}


def test_a_lob_update_is_findable_at_once(
    stack: Stack, lob: LobClient, baseline_cursor: str
) -> None:
    target = lob.changes()[0][31]["after"]
    user = emulator_token(stack.emulator_url, stack.ca_file, user=target["userPrincipalName"])
    response = lob.update_profile(target["id"], user, interests=["Xylophone restoration"])
    assert response.status_code == 200, response.text
    assert found_ids(lob, '"xylophone restoration"') == {target["id"]}


def test_a_malformed_query_names_the_position(lob: LobClient, baseline_cursor: str) -> None:
    response = lob.http.get("/v1/profiles:search", params={"query": 'skills:"open'})
    assert response.status_code == 400
    assert "position" in response.json()["message"]
