"""`make demo`: the whole round trip on the embedded default, narrated.

Start the stack, run a first sync, edit profiles "in Delve" (through the
emulator) and once from the LOB side, run a second sync, then print the
change events the LOB app received, field by field, and stop everything.
"""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

from devtools.devstack.lob_client import LobClient, edit_in_delve, emulator_token
from devtools.devstack.stack import Stack, StackOptions

__all__ = ["run_demo"]


def _say(text: str = "") -> None:
    print(text, flush=True)


def _show_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    if value in (None, ""):
        return "(empty)"
    text = str(value)
    return repr(text if len(text) <= 70 else text[:67] + "...")


def print_event(event: dict[str, Any]) -> None:
    profile = event.get("after") or event.get("before") or {}
    who = profile.get("userPrincipalName") or event["userId"]
    _say(f"  {event['kind']:<8} {who}  (origin {event['origin']}, cursor {event['cursor']})")
    for change in event.get("fieldChanges", []):
        if isinstance(change.get("before"), list) or isinstance(change.get("after"), list):
            delta = [f"+{item}" for item in change.get("added", [])]
            delta += [f"-{item}" for item in change.get("removed", [])]
            _say(f"      {change['field']}: {' '.join(delta)}")
            _say(f"        before: {_show_value(change.get('before'))}")
            _say(f"        after:  {_show_value(change.get('after'))}")
        else:
            _say(
                f"      {change['field']}: {_show_value(change.get('before'))}"
                f" -> {_show_value(change.get('after'))}"
            )


def _run_summary(run: dict[str, Any]) -> str:
    counts = run.get("counts", {})
    keys = ("users", "profiles", "created", "updated", "deleted", "unchanged", "failed")
    summary = f"run {run['runId']}: {run['state']}, " + ", ".join(
        f"{key} {counts.get(key, 0)}" for key in keys
    )
    # Listed users SharePoint keeps no profile for: a state of the account, not a failure.
    summary += f", without a SharePoint profile {counts.get('withoutProfile', 0)}"
    return summary + (f"\n   error: {run['error']}" if run.get("error") else "")


def run_demo(users: int = 50) -> int:
    with tempfile.TemporaryDirectory(prefix="profile-sync-demo-") as state:
        _say(
            f"Starting the embedded stack: Graph emulator ({users} users, a few of them guests,"
            " rooms, shared mailboxes or unlicensed), Redis, extender,"
        )
        _say("differ, notifier and the Envoy REST gateway ...")
        with Stack(
            StackOptions(state_dir=pathlib.Path(state), users=users, tenant_mix="realistic")
        ) as stack:
            _say(f"  gateway {stack.gateway_url}   Graph emulator {stack.emulator_url}")
            with LobClient.on_stack(stack) as lob:
                return _narrate(stack, lob)


def _narrate(stack: Stack, lob: LobClient) -> int:
    _say("\n1. First sync (POST /v1/syncs): every profile is read, snapshotted and new.")
    run = lob.sync_and_wait()
    _say("   " + _run_summary(run))
    if run["state"] != "SUCCEEDED":
        return 1
    first, cursor = lob.changes()
    _say(f"   The LOB app received {len(first)} CREATED events; it keeps cursor {cursor}.")

    people = [event["after"] for event in first[:4]]
    a, b, c, d = people
    _say("\n2. Edits made elsewhere (in Delve, through the emulator):")
    delve = (stack.emulator_url, stack.ca_file)
    edit_in_delve(*delve, a["id"], aboutMe="Platform engineer. Ask me about Kubernetes.")
    _say(f"   {a['userPrincipalName']}: new About me")
    b_skills = [*b.get("skills", [])[1:], "Kubernetes"]
    edit_in_delve(*delve, b["id"], skills=b_skills)
    _say(f"   {b['userPrincipalName']}: skills edited")
    edit_in_delve(
        *delve, c["id"], interests=[], pastProjects=[*c.get("pastProjects", []), "Apollo"]
    )
    _say(f"   {c['userPrincipalName']}: interests cleared, project Apollo added")

    _say("\n3. An edit from the LOB side (PATCH /v1/profiles/{id} with the user's own token):")
    user_token = emulator_token(stack.emulator_url, stack.ca_file, user=d["userPrincipalName"])
    response = lob.update_profile(
        d["id"],
        user_token,
        schools=[*d.get("schools", []), "Open University"],
        expectedVersion=d["version"],
    )
    response.raise_for_status()
    version = response.json()["version"]
    _say(f"   {d['userPrincipalName']}: school added, new version {version[:12]}...")

    _say("\n4. Second sync: only the differences reach the LOB app.")
    _say("   " + _run_summary(lob.sync_and_wait()))
    events, cursor = lob.changes(cursor)
    _say(
        f"\n5. Change events the LOB app received (GET /v1/changes?afterCursor=...): {len(events)}"
    )
    for event in events:
        print_event(event)

    query = "skills:kubernetes"
    _say(f"\n6. Search (GET /v1/profiles:search?query={query}):")
    response = lob.http.get("/v1/profiles:search", params={"query": query, "pageSize": 100})
    response.raise_for_status()
    results = response.json()["results"]
    _say(f"   {len(results)} profile(s) match; the first {min(5, len(results))}:")
    for result in results[:5]:
        profile = result["profile"]
        _say(
            f"   {result['score']:>5}  {profile['displayName']} ({profile['jobTitle']})"
            f"  matched: {', '.join(result['matchedFields'])}"
        )
    if b["id"] not in {result["profile"]["id"] for result in results}:
        _say("\nUnexpected result: the skill added in Delve is not findable.")
        return 1

    _say("\n7. A third sync with no edits publishes nothing:")
    _say("   " + _run_summary(lob.sync_and_wait()))
    after, _ = lob.changes(cursor)
    _say(f"   new events: {len(after)}")
    expected = {a["id"], b["id"], c["id"], d["id"]}
    received = {event["userId"] for event in events}
    if received != expected or after:
        _say("\nUnexpected result: the events do not match the edits made.")
        return 1
    _say("\nDone: every edit arrived once, field by field, with its origin.")
    return 0
