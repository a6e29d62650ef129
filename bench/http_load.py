"""A lean HTTP/1.1 client for offering load: keep-alive connections, GET only.

    async with Connections("http://127.0.0.1:8080", 100, headers) as connections:
        status, body = await connections.get("/v1/profiles:search?query=python")

httpx spends milliseconds of CPU per call (its pool scans every waiting request
on each change, and its async-library detection retries a failing import per
call): on a shared 2-core machine a generator built on it cannot keep 100 calls
a second on schedule, and its own lag would be read as the stack's. This one
writes the request and reads the answer on a connection taken from a queue;
a call due while every connection is busy waits for one (as a LOB app's pool
would make it), and that wait is the caller's to count.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["Connections", "HttpError"]


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Connections:
    def __init__(self, base_url: str, count: int, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"an http:// URL with a host is needed, not {base_url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._count = count
        self._head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._idle: asyncio.Queue[_Connection | None] = asyncio.Queue()

    async def __aenter__(self) -> Connections:
        for _ in range(self._count):
            self._idle.put_nowait(None)  # opened when first used
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while not self._idle.empty():
            connection = self._idle.get_nowait()
            if connection is not None:
                connection[1].close()

    async def get(self, target: str) -> tuple[int, bytes]:
        """GET `target` (path and query, already encoded): the status and the body."""
        connection = await self._idle.get()
        try:
            if connection is None:
                connection = await asyncio.open_connection(self._host, self._port)
            status, body, keep = await self._exchange(connection, target)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            if connection is not None:
                connection[1].close()
            self._idle.put_nowait(None)
            raise HttpError(f"{type(error).__name__}: {error}") from error
        if not keep:
            connection[1].close()
        self._idle.put_nowait(connection if keep else None)
        return status, body

    async def _exchange(self, connection: _Connection, target: str) -> tuple[int, bytes, bool]:
        reader, writer = connection
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{self._head}\r\n".encode()
        )
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:] if line)
        }
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += await reader.readexactly(size + 2)
                del body[-2:]
            await reader.readuntil(b"\r\n")  # no trailers are sent
        else:
            body = bytearray(await reader.readexactly(int(fields.get("content-length", "0"))))
        return status, bytes(body), fields.get("connection", "").lower() != "close"
