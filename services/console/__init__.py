"""The operations console: hand-written pages the REST gateway serves under /console/.

    from services.console import ConsoleSettings, add_console
    add_console(bootstrap, ConsoleSettings())   # the gateway's Envoy config gains /console/

The pages (static/) are plain HTML, CSS and JavaScript modules with no build
step; they call the REST API on the same origin with the operator's token.
"""

from __future__ import annotations

from services.console.routes import (
    CONFIG_PATH,
    CONSOLE_PATH,
    DEV_TOKEN_PATH,
    add_console,
    console_clusters,
    console_files,
    console_routes,
)
from services.console.settings import STATIC_DIR, ConsoleSettings, EmulatorTokens

__all__ = [
    "CONFIG_PATH",
    "CONSOLE_PATH",
    "DEV_TOKEN_PATH",
    "STATIC_DIR",
    "ConsoleSettings",
    "EmulatorTokens",
    "add_console",
    "console_clusters",
    "console_files",
    "console_routes",
]
