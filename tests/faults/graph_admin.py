"""Steering a stack's Graph emulator through its admin API during a fault test."""

from __future__ import annotations

from typing import Any

from devtools.devstack.lob_client import emulator_http
from devtools.devstack.stack import Stack


def configure_graph(stack: Stack, **config: Any) -> dict[str, Any]:
    """Changes the emulator's behaviour (quota, failures, latency); answers the whole config."""
    with emulator_http(stack.emulator_url, stack.ca_file) as admin:
        response = admin.put("/_emulator/config", json=config)
        response.raise_for_status()
        return dict(response.json())


def graph_stats(stack: Stack, *, reset: bool = False) -> dict[str, Any]:
    """The emulator's counters; `reset` zeroes them after reading."""
    with emulator_http(stack.emulator_url, stack.ca_file) as admin:
        response = admin.get("/_emulator/stats")
        response.raise_for_status()
        if reset:
            admin.delete("/_emulator/stats").raise_for_status()
        return dict(response.json())
