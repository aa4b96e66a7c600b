"""HTTP clients kept per channel for the life of the process.

One ``httpx.AsyncClient`` per channel, each with a few connections, rather than
one client with hundreds: httpx's connection pool slows down sharply as the
number of concurrent connections in one pool grows, and a pool per channel also
keeps one endpoint's connections from crowding out another's. The number of
clients is bounded; the least recently used idle one is closed first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

MAX_CLIENTS = 256


@dataclass
class _Entry:
    client: httpx.AsyncClient
    users: int = 0


class ClientPool:
    """Per-channel ``httpx.AsyncClient`` instances, least recently used closed first."""

    def __init__(
        self, connections: int, max_clients: int = MAX_CLIENTS, **options: Any
    ) -> None:
        """Clients get ``connections`` connections each and ``options``."""
        self._connections = connections
        self._max_clients = max_clients
        self._options = options
        self._clients: OrderedDict[str, _Entry] = OrderedDict()

    @asynccontextmanager
    async def client(self, key: str) -> AsyncIterator[httpx.AsyncClient]:
        """The client of ``key`` (a channel id), created on first use."""
        entry = self._clients.pop(key, None) or _Entry(self._new_client())
        self._clients[key] = entry
        entry.users += 1
        try:
            yield entry.client
        finally:
            entry.users -= 1
            await self._evict()

    async def close(self) -> None:
        """Close every client."""
        while self._clients:
            _key, entry = self._clients.popitem()
            await entry.client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self._connections,
            max_keepalive_connections=self._connections,
        )
        return httpx.AsyncClient(limits=limits, **self._options)

    async def _evict(self) -> None:
        while len(self._clients) > self._max_clients:
            idle = next((k for k, e in self._clients.items() if e.users == 0), None)
            if idle is None:
                return
            await self._clients.pop(idle).client.aclose()
