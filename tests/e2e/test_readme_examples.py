"""The README's "Calling it" examples work as written, against a running stack.

The examples name the fixed ports and state directory of `make dev`; here they run
against the test stack's own, substituted in.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re
import subprocess

from services.devstack.lob_client import LobClient
from services.devstack.stack import Stack

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def calling_it_blocks(language: str) -> list[str]:
    section = README.read_text().split("## Calling it", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def for_stack(text: str, stack: Stack) -> str:
    return (
        text.replace("https://127.0.0.1:8443", stack.emulator_url)
        .replace("http://127.0.0.1:8080", stack.gateway_url)
        .replace("127.0.0.1:50051", stack.extender_addr)
        .replace("127.0.0.1:50053", stack.notifier_addr)
        .replace(".state/dev/graph_emulator/ca.pem", stack.ca_file)
    )


def test_the_curl_examples_start_a_sync_search_and_read_changes(
    stack: Stack, lob: LobClient, baseline_cursor: str
) -> None:
    [script] = calling_it_blocks("sh")
    # The stream example runs until stopped: here it gets two seconds.
    script = for_stack(script, stack).replace("curl -sN", "curl -sN --max-time 2")
    finished = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    # curl exits 28 when --max-time ends the stream.
    assert finished.returncode in (0, 28), finished.stderr
    out = finished.stdout
    assert '"runId"' in out and '"state":"RUNNING"' in out
    assert '"results"' in out and '"matchedFields":["skills"]' in out
    assert '"events"' in out and '"nextCursor"' in out
    assert '"kind":"CREATED"' in out
    # The sync the example started ends before the next test runs.
    started, _ = json.JSONDecoder().raw_decode(out)  # curl prints no newline after it
    assert lob.wait_for_run(started, timeout=300)["state"] == "SUCCEEDED"


def test_the_grpc_example_searches_and_streams(stack: Stack, baseline_cursor: str) -> None:
    [example] = calling_it_blocks("python")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(for_stack(example, stack), "README.md", "exec"), {})  # noqa: S102
    lines = printed.getvalue().splitlines()
    assert any(line.endswith("['skills']") for line in lines), lines
    assert sum(" CREATED " in line for line in lines) >= 40, lines
