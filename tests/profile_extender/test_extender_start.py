"""`python -m services.profile_extender` refuses to start on a missing or malformed setting."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from devtools.processes import python_module

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPLETE = {
    "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000002",
    "AZURE_CLIENT_SECRET": "secret",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "GRPC_PORT": "0",
    "METRICS_PORT": "-1",
}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"AZURE_CLIENT_SECRET": ""}, "AZURE_CLIENT_SECRET is required but not set"),
        ({"REDIS_URL": ""}, "REDIS_URL is required but not set"),
        ({"GRPC_PORT": "http"}, "GRPC_PORT must be an integer, got 'http'"),
        (
            {"LOG_LEVEL": "verbose"},
            "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'VERBOSE'",
        ),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_naming_it(
    overrides: dict[str, str], expected: str
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **COMPLETE, **overrides}
    finished = subprocess.run(
        python_module("services.profile_extender"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr == f"profile_extender: configuration error: {expected}\n"
    assert finished.stdout == ""
