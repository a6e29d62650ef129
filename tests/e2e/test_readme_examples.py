"""The README's "Calling it" examples work as written, against a fresh stack.

The first shell block runs as it is, top to bottom, against a stack like `make dev`'s
(50 users, the same seed) started for this module with nothing synced yet: a new user
pasting it right after `make dev` is up must see a finished run, search results and
change events. Only the addresses differ: `make dev`'s fixed ports and state folder
are replaced by the test stack's own (free ports, so parallel runs do not collide).
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.devstack.__main__ import banner
from devtools.devstack.stack import Stack, StackOptions

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
# What `make dev` runs (devtools/devstack/__main__.py): 50 users, the default seed.
DEV_USERS = 50


def calling_it_blocks(language: str) -> list[str]:
    section = README.read_text().split("## Calling it", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def for_stack(text: str, stack: Stack) -> str:
    return (
        text.replace("https://127.0.0.1:8443", stack.emulator_url)
        .replace("http://127.0.0.1:8080", stack.gateway_url)
        .replace("127.0.0.1:50051", stack.extender_addr)
        .replace("127.0.0.1:50052", stack.differ_addr)
        .replace("127.0.0.1:50053", stack.notifier_addr)
        .replace(".state/dev/graph_emulator/ca.pem", stack.ca_file)
    )


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = StackOptions(state_dir=tmp_path_factory.mktemp("readme-stack"), users=DEV_USERS)
    with Stack(options) as running:
        yield running


@pytest.fixture(scope="module")
def shell_output(fresh_stack: Stack) -> subprocess.CompletedProcess[str]:
    """The first shell block of "Calling it", run once, as written, by bash."""
    script = for_stack(calling_it_blocks("sh")[0], fresh_stack)
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=README.parent,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_curl_block_shows_a_finished_run_results_and_events_on_the_first_try(
    shell_output: subprocess.CompletedProcess[str],
) -> None:
    # The stream line ends by its own --max-time (curl exits 28, grep then 0).
    assert shell_output.returncode == 0, shell_output.stderr
    assert shell_output.stderr == "", shell_output.stderr
    lines = json_lines(shell_output.stdout)
    run, search, page, *streamed = lines

    assert run["state"] == "SUCCEEDED", run
    # A first sync on a clean state: every user of the tenant is new.
    assert run["counts"]["created"] == str(DEV_USERS), run["counts"]
    assert {timing["stage"] for timing in run["timings"]} >= {"fetch", "compare", "publish"}

    assert int(search["totalSize"]) >= 1, search
    for result in search["results"]:
        assert "skills" in result["matchedFields"]
        assert any("python" in skill.lower() for skill in result["profile"]["skills"]), result

    assert len(page["events"]) == 2 and page["nextCursor"] == page["events"][-1]["cursor"]
    assert all(event["kind"] == "CREATED" for event in page["events"])

    # The stream replays the whole log, and the heartbeat filter leaves only events.
    assert len(streamed) == DEV_USERS, [line.get("eventId") for line in streamed]
    assert all(event["eventId"] and not event.get("heartbeat") for event in streamed)
    assert {event["runId"] for event in streamed} == {run["runId"]}


def test_the_grpc_example_runs_as_the_readme_says(
    fresh_stack: Stack, shell_output: subprocess.CompletedProcess[str], tmp_path: pathlib.Path
) -> None:
    """Saved as example.py and run with the command the README gives, from the repository
    root: the generated stubs are found (they are not installed into the venv)."""
    [example] = calling_it_blocks("python")
    section = README.read_text().split("## Calling it", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"`(PYTHONPATH=\S+ \.venv/bin/python) example\.py`", section)
    assert command is not None, "the README no longer says how to run the Python example"
    # Saved outside the repository, where Python would not find the stubs by itself.
    saved = tmp_path / "example.py"
    saved.write_text(for_stack(example, fresh_stack))
    finished = subprocess.run(
        ["bash", "-c", f"{command.group(1)} {saved}"],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert any(line.endswith("['skills']") for line in lines), lines
    assert sum(" CREATED " in line for line in lines) == DEV_USERS, lines


def test_make_dev_prints_the_console_url_first(fresh_stack: Stack) -> None:
    lines = banner(fresh_stack)
    assert lines[0].startswith("web console")
    url = lines[0].split()[-1]
    with httpx.Client(trust_env=False) as client:
        page = client.get(url)
    assert page.status_code == 200 and "profile-sync console" in page.text


def test_the_subscriber_example_creates_reads_and_acknowledges(
    fresh_stack: Stack, shell_output: subprocess.CompletedProcess[str]
) -> None:
    """Run as the README says: in the shell session of "Calling it" (its variables set)."""
    section = README.read_text().split("## Subscribers and webhooks", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    session = calling_it_blocks("sh")[0].split("\n# Start a sync", 1)[0]
    assert "API=" in session and "H=" in session, session
    finished = subprocess.run(
        ["bash", "-c", for_stack(f"{session}\n{example}", fresh_stack)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=README.parent,
    )
    assert finished.returncode == 0 and finished.stderr == "", finished.stderr
    created, acknowledged = json_lines(finished.stdout)
    assert created["name"] == acknowledged["name"] == "lob-app"
    # From the start of the log: every event of the first sync waits, until ten are acknowledged.
    assert created["status"]["lagEvents"] == str(DEV_USERS)
    assert acknowledged["status"]["lagEvents"] == str(DEV_USERS - 10)


def reading_blocks(language: str) -> list[str]:
    section = README.read_text().split("## Reading profiles and following changes", 1)[1]
    return re.findall(rf"```{language}\n(.*?)```", section.split("\n## ", 1)[0], flags=re.DOTALL)


def test_the_bootstrap_example_lists_every_profile_and_follows_from_its_cursor(
    fresh_stack: Stack, shell_output: subprocess.CompletedProcess[str]
) -> None:
    """Run as the README says: in the shell session of "Calling it", after its sync."""
    [example] = reading_blocks("sh")
    session = calling_it_blocks("sh")[0].split("\n# Start a sync", 1)[0]
    finished = subprocess.run(
        ["bash", "-c", for_stack(f"{session}\n{example}", fresh_stack)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=README.parent,
    )
    assert finished.returncode == 0 and finished.stderr == "", finished.stderr
    summary, profile_line, changes_line = finished.stdout.strip().splitlines()
    count, _, cursor = summary.partition(" profiles; changes follow after ")
    assert int(count) == DEV_USERS and re.fullmatch(r"\d+-\d+", cursor), summary
    profile = json.loads(profile_line)
    assert profile["id"] and profile["syncedAt"] and profile["version"]
    assert json.loads(changes_line)["events"] == [], "nothing changed after the listing"


def test_the_grpc_bootstrap_example_runs(
    fresh_stack: Stack, shell_output: subprocess.CompletedProcess[str], tmp_path: pathlib.Path
) -> None:
    [example] = reading_blocks("python")
    saved = tmp_path / "bootstrap.py"
    saved.write_text(for_stack(example, fresh_stack))
    finished = subprocess.run(
        ["bash", "-c", f"PYTHONPATH=$PWD .venv/bin/python {saved}"],
        cwd=README.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    listed, changes = finished.stdout.strip().splitlines()
    assert listed.startswith(f"{DEV_USERS} profiles; following changes after "), listed
    assert changes == "0 changes since the listing"
