"""The embedded default tenant as `make dev` and `make demo` start it (50 users,
seed 1, the realistic mix of guests, shared mailboxes, rooms, unlicensed members
and members without a personal site), synced through the whole stack.

- Two syncs in a row both SUCCEED with 0 failed profiles, and the Graph resource
  units they spend are at most 1.1 x the users with a profile plus the list pages.
- A user deleted from the tenant is deleted in the LOB app by the next sync.
- A licence removed from a member (or their personal site): the next sync
  reports that user's profile gone, not failed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.devstack.lob_client import LobClient, emulator_http
from devtools.devstack.stack import Stack, StackOptions
from devtools.graph_emulator.accounts import has_sharepoint_licence


@pytest.fixture(scope="module")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # What `python -m devtools.devstack dev|demo` builds (devtools/devstack/__main__.py).
    options = StackOptions(
        state_dir=tmp_path_factory.mktemp("messy"), users=50, seed=1, tenant_mix="realistic"
    )
    with Stack(options) as running:
        yield running


@pytest.fixture(scope="module")
def messy_lob(default_stack: Stack) -> Iterator[LobClient]:
    with LobClient.on_stack(default_stack) as client:
        yield client


def emulator(stack: Stack) -> httpx.Client:
    return emulator_http(stack.emulator_url, stack.ca_file)


def directory(stack: Stack) -> list[dict[str, Any]]:
    """Every user of the emulated tenant with all their properties (admin API)."""
    with emulator(stack) as http:
        token = http.post(
            "/_emulator/token",
            json={"roles": ["User.Read.All"], "audience": "https://graph.microsoft.com"},
        ).json()["access_token"]
        listing = http.get(
            "/v1.0/users?$select=id&$top=999", headers={"Authorization": f"Bearer {token}"}
        )
        listing.raise_for_status()
        return [http.get(f"/_emulator/users/{u['id']}").json() for u in listing.json()["value"]]


def sync_spending(stack: Stack, lob: LobClient) -> tuple[dict[str, Any], int]:
    with emulator(stack) as http:
        http.delete("/_emulator/stats").raise_for_status()
    run = lob.sync_and_wait()
    with emulator(stack) as http:
        units = int(http.get("/_emulator/stats").json()["resourceUnits"])
    return run, units


def count(run: dict[str, Any], name: str) -> int:
    return int(run["counts"].get(name, 0))


def test_syncs_of_the_default_tenant_succeed_within_the_quota_goal(
    default_stack: Stack, messy_lob: LobClient
) -> None:
    users = directory(default_stack)
    licensed_members = [u for u in users if u["userType"] == "Member" and has_sharepoint_licence(u)]
    with_profile = [u for u in licensed_members if u["mySite"]]
    others = len(users) - len(with_profile)
    assert others >= 5, "the default tenant holds guests, rooms, unlicensed members, ..."
    pages = math.ceil(len(licensed_members) / 999)

    for _ in range(2):
        run, units = sync_spending(default_stack, messy_lob)
        assert run["state"] == "SUCCEEDED", run
        assert count(run, "failed") == 0
        assert count(run, "profiles") == len(with_profile)
        assert count(run, "withoutProfile") == len(licensed_members) - len(with_profile)
        assert units <= 1.1 * len(with_profile) + pages, (units, len(with_profile))
    events, _ = messy_lob.changes()
    assert {e["userId"] for e in events if e["kind"] == "CREATED"} == {
        u["id"] for u in with_profile
    }


def test_a_deleted_user_and_a_removed_licence_are_reported_gone_not_failed(
    default_stack: Stack, messy_lob: LobClient
) -> None:
    first = messy_lob.sync_and_wait()
    assert first["state"] == "SUCCEEDED", first
    _, cursor = messy_lob.changes()
    synced = [p["id"] for p in messy_lob.bootstrap()[0]]
    deleted, unlicensed, siteless = synced[0], synced[1], synced[2]
    with emulator(default_stack) as http:
        http.delete(f"/_emulator/users/{deleted}").raise_for_status()
        http.post(
            f"/_emulator/users/{unlicensed}/sharepoint", json={"licensed": False}
        ).raise_for_status()
        http.post(
            f"/_emulator/users/{siteless}/sharepoint", json={"personalSite": False}
        ).raise_for_status()

    run = messy_lob.sync_and_wait()
    assert run["state"] == "SUCCEEDED", run
    assert count(run, "failed") == 0 and count(run, "deleted") == 3
    events, _ = messy_lob.changes(cursor)
    gone = {e["userId"]: e for e in events if e["kind"] == "DELETED"}
    assert set(gone) == {deleted, unlicensed, siteless}
    assert "no longer listed" in gone[deleted]["reason"]
    assert "no longer listed" in gone[unlicensed]["reason"]  # outside SYNC_USERS now
    assert gone[siteless]["reason"].startswith("no SharePoint profile any more")
    remaining = {p["id"] for p in messy_lob.bootstrap()[0]}
    assert not remaining & {deleted, unlicensed, siteless}
