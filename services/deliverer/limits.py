"""Concurrency bounds per channel, so a slow endpoint holds only its own slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLimiter:
    """At most ``limit`` holders per key; a key's state is dropped when unused."""

    def __init__(self, limit: int) -> None:
        """Allow ``limit`` concurrent holders per key."""
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Wait for a slot of ``key`` and hold it for the block."""
        semaphore, users = self._slots.setdefault(
            key, (asyncio.Semaphore(self._limit), [0])
        )
        users[0] += 1
        try:
            async with semaphore:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._slots[key]
