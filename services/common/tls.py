"""TLS trust for outgoing HTTPS (Graph, the authority, the emulator)."""

from __future__ import annotations

import ssl

__all__ = ["client_ssl_context"]


def client_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Trusts exactly `ca_bundle` when given, the system store otherwise."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    return ssl.create_default_context()
