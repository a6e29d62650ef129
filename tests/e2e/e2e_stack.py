"""Helpers for end-to-end tests."""

from __future__ import annotations

from services.devstack.lob_client import emulator_http
from services.devstack.stack import Stack


def edit_in_delve(stack: Stack, user_id: str, **fields: object) -> None:
    """An edit made outside the LOB app, through the emulator's admin API."""
    with emulator_http(stack.emulator_url, stack.ca_file) as client:
        client.post(f"/_emulator/users/{user_id}/edit", json=fields).raise_for_status()
