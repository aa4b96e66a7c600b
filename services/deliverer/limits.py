"""Bounds on what a deliverer holds: per process, per channel, and per attempt.

:class:`InFlightLimits` bounds the messages a process holds (from the moment
one is handed to the pipeline until its outcome is durable) and gives each
channel a share of that bound, so an endpoint that hangs until its deadline
holds its share and no more. :class:`KeyedLimiter` bounds the attempts one
channel runs at once; messages beyond it wait inside their share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class InFlightLimits:
    """At most ``total`` messages in flight, at most ``per_channel`` of one channel.

    Shared by every consumer of a process and used from its event loop only,
    so it needs no lock. A message without a channel (one that did not
    decode) counts against the total only.
    """

    def __init__(self, total: int, per_channel: int) -> None:
        """Hold at most ``total`` messages, ``per_channel`` of any one channel."""
        self.total = total
        self.per_channel = per_channel
        self._held = 0
        self._by_channel: dict[str, int] = {}

    def full(self) -> bool:
        """Whether no message at all can be taken now."""
        return self._held >= self.total

    def admits(self, channel: str | None) -> bool:
        """Whether a message of ``channel`` can be taken now."""
        if self.full():
            return False
        return channel is None or self._by_channel.get(channel, 0) < self.per_channel

    def take(self, channel: str | None) -> None:
        """Count a message of ``channel`` as in flight (after :meth:`admits`)."""
        self._held += 1
        if channel is not None:
            self._by_channel[channel] = self._by_channel.get(channel, 0) + 1

    def release(self, channel: str | None) -> None:
        """A message of ``channel`` is done: its outcome is durable, or it failed."""
        self._held -= 1
        if channel is None:
            return
        left = self._by_channel[channel] - 1
        if left:
            self._by_channel[channel] = left
        else:
            del self._by_channel[channel]


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
