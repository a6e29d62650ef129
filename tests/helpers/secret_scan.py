"""Looks for secrets in everything a running stack showed: process logs, error
bodies and metrics.

    secrets = stack_secrets(stack, tokens=used_tokens)
    places = {"logs": stack.logs_text(), **scrape_metrics(stack), "bodies": "\\n".join(bodies)}
    assert find_leaks(secrets, places) == []

A token counts as leaked when it appears whole or when its signature (the part
that makes it usable) does; a key when any line of its PEM body does.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import httpx

from devtools.devstack.stack import Stack
from devtools.graph_emulator.defaults import DEFAULT_CLIENT_SECRET, DEFAULT_USER_PASSWORD

# Every PEM block starts so: private keys, certificates, anything else.
PEM_MARKER = "-----BEGIN"
# PEM body lines are 64 base64 characters; shorter last lines could match by chance.
PEM_LINE_LENGTH = 64


@dataclass(frozen=True)
class Secret:
    name: str
    value: str


def _pem_lines(path: pathlib.Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line for line in lines if len(line) == PEM_LINE_LENGTH and not line.startswith("-")]


def stack_secrets(
    stack: Stack,
    tokens: set[str] | frozenset[str] = frozenset(),
    extra: dict[str, str] | None = None,
) -> list[Secret]:
    """The client secret, the emulated users' password, the emulator's private keys,
    the given tokens (and their signatures) and any `extra` secrets."""
    found = [
        Secret("client secret", DEFAULT_CLIENT_SECRET),
        Secret("user password", DEFAULT_USER_PASSWORD),
        Secret("PEM block", PEM_MARKER),
    ]
    for key_file in sorted((stack.state_dir / "graph_emulator").glob("*.key")):
        found += [Secret(f"{key_file.name} line", line) for line in _pem_lines(key_file)]
    for index, token in enumerate(sorted(tokens)):
        found.append(Secret(f"token #{index}", token))
        found.append(Secret(f"signature of token #{index}", token.rsplit(".", 1)[-1]))
    for name, value in (extra or {}).items():
        found.append(Secret(name, value))
    return found


def scrape_metrics(stack: Stack) -> dict[str, str]:
    """The Prometheus text of every service, and Envoy's statistics."""
    pages: dict[str, str] = {}
    with httpx.Client(timeout=30, trust_env=False) as http:
        for name, process in stack.processes.items():
            port = process.ready.get("metricsPort")
            if port:
                pages[f"{name} /metrics"] = http.get(f"http://127.0.0.1:{port}/metrics").text
        admin = (
            stack.processes["gateway"].ready.get("adminUrl")
            if "gateway" in stack.processes
            else None
        )
        if admin:
            pages["gateway /stats/prometheus"] = http.get(f"{admin}/stats/prometheus").text
    return pages


def find_leaks(secrets: list[Secret], places: dict[str, str]) -> list[str]:
    """`"<secret> in <place>"` for every secret found somewhere."""
    return [
        f"{secret.name} in {place}"
        for secret in secrets
        for place, text in places.items()
        if secret.value and secret.value in text
    ]
