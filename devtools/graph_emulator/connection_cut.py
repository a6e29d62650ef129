"""Cutting a client's TCP connection from inside a request, for the ``dropRate`` fault.

    cut_connection(("127.0.0.1", 53122))   # the ASGI scope's "client"

ASGI gives an application no handle on its connection, so we find the socket by its peer
address among this process's descriptors and reset it (``SO_LINGER`` 0, then shutdown): the
client sees exactly what a dropped connection looks like (a reset, no status line), and on
HTTP/2 every stream sharing the connection fails with it, as they would on a real network.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from pathlib import Path
from typing import Final

_FD_DIRS: Final = (Path("/proc/self/fd"), Path("/dev/fd"))


def _descriptors() -> list[int]:
    for directory in _FD_DIRS:
        try:
            return [int(name) for name in os.listdir(directory) if name.isdigit()]
        except OSError:
            continue
    return []


def _peer(fd: int) -> tuple[str, int] | None:
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        address = sock.getpeername()
    except OSError:
        return None
    finally:
        sock.detach()  # the descriptor stays with its owner
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


def cut_connection(client: tuple[str, int] | None) -> bool:
    """Reset the connection whose peer is ``client``; False if it could not be found."""
    if client is None:
        return False
    wanted = (str(client[0]), int(client[1]))
    for fd in _descriptors():
        if _peer(fd) != wanted:
            continue
        sock = socket.socket(fileno=fd)
        try:
            # Linger 0: close with a reset, not a polite FIN after pending data.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return False
        finally:
            sock.detach()
        return True
    return False
