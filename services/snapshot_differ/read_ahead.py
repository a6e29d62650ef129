"""Reading a stream ahead of its consumer, so waiting and working overlap.

    async for item in read_ahead(stream, capacity=2000):
        await work_on(item)

A task pulls from `source` into a bounded queue while the consumer works on
what it already has: the extender keeps reading Graph while the differ
compares, publishes and files the previous batch. An error of the source is
raised to the consumer after the items read before it; if the consumer stops
early, the reading task is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")


class _End(Generic[T]):
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


async def read_ahead(source: AsyncIterator[T], capacity: int) -> AsyncIterator[T]:
    queue: asyncio.Queue[T | _End[T]] = asyncio.Queue(maxsize=max(1, capacity))

    async def pull() -> None:
        error: BaseException | None = None
        try:
            async for item in source:
                await queue.put(item)
        except Exception as failure:  # handed to the consumer, in order
            error = failure
        await queue.put(_End(error))

    reader = asyncio.create_task(pull())
    try:
        while not isinstance(item := await queue.get(), _End):
            yield item
        if item.error is not None:
            raise item.error
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
