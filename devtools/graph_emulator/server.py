"""Serving the app with Hypercorn over TLS (HTTP/2 and HTTP/1.1 via ALPN) on our own socket.

We bind the listening socket ourselves so ``--port 0`` works: the kernel picks the port, we
learn it before serving, and the ready file can name it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework
from starlette.applications import Starlette

from devtools.graph_emulator.tls import TlsFiles

log = logging.getLogger("graph_emulator.server")


def listen_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    # Listening before Hypercorn starts means early clients queue instead of being refused.
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def check_tls(files: TlsFiles) -> None:
    """Fail before announcing readiness if the certificate pair cannot be loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(files.cert_file), str(files.key_file))


def write_ready_file(path: Path, payload: dict[str, Any]) -> None:
    """Atomically: readers see either no file or the complete JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def hypercorn_config(files: TlsFiles, fd: int) -> Config:
    config = Config()
    config.bind = [f"fd://{fd}"]
    config.certfile = str(files.cert_file)
    config.keyfile = str(files.key_file)
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None  # our middleware logs requests as JSON
    config.errorlog = logging.getLogger("graph_emulator.hypercorn")
    config.include_server_header = False
    config.graceful_timeout = 3.0
    # Hypercorn closes a connection after 1,000 requests by default, cutting off the HTTP/2
    # streams still in flight; Graph keeps a busy connection open.
    config.keep_alive_max_requests = 2**62
    return config


async def run_server(
    app: Starlette,
    sock: socket.socket,
    files: TlsFiles,
    ready: Path | None,
    ready_payload: dict[str, Any],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Hypercorn wraps the descriptor in its own socket object; detach ours so the
    # descriptor has a single owner and is closed exactly once.
    fd = sock.detach()
    config = hypercorn_config(files, fd)
    if ready is not None:
        write_ready_file(ready, ready_payload)
    log.info("listening", extra={"url": ready_payload["url"], "readyFile": str(ready)})
    serving = asyncio.create_task(
        serve(cast(ASGIFramework, app), config, shutdown_trigger=stop.wait, mode="asgi")
    )
    try:
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        try:
            # Hypercorn's shutdown waits for the listener to close, which on this Python
            # waits for every open keep-alive connection: a client that holds one (any
            # HTTP/2 client does) would keep the process alive after SIGTERM. Past the
            # grace period, in-flight requests have had their time; stop regardless.
            await asyncio.wait_for(asyncio.shield(serving), config.graceful_timeout + 1.0)
        except TimeoutError:
            # Cancelling the connection tasks makes asyncio report each one as an error;
            # at this point they are expected, so they go to the debug log.
            loop.set_exception_handler(
                lambda _loop, context: log.debug("closed at shutdown: %s", context.get("message"))
            )
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            log.info("connections still open after the grace period were closed")
    finally:
        if ready is not None:
            # A stale ready file would point clients at a dead port.
            ready.unlink(missing_ok=True)  # noqa: ASYNC240 - one tiny unlink at shutdown
        log.info("stopped")
