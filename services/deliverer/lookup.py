"""Which jobs the recorder has already recorded as delivered.

A command redelivered after a crash, or a duplicate retry, must not reach the
receiver again once its job is delivered. The lookup is one query per consumed
batch; when the database is unreachable the deliverer sends anyway, since a
duplicate carrying the same idempotency key is better than a lost notification.
After a failure the lookup rests for a few seconds rather than holding every
batch up with another connection attempt, and the outage is logged once, when
it starts, and once more when it ends.
"""

from __future__ import annotations

import logging
import time
import uuid

import psycopg

from switchboard.db import connection_options

log = logging.getLogger(__name__)

DELIVERED_QUERY = (
    "SELECT job_id::text FROM notification_jobs "
    "WHERE job_id = ANY(%s::uuid[]) AND state = 'delivered'"
)
RETRY_AFTER_FAILURE_S = 10.0


class DeliveredLookup:
    """Finds delivered jobs in notification_jobs, reconnecting when needed."""

    def __init__(self, database_url: str) -> None:
        """Query the database at ``database_url``."""
        self._database_url = database_url
        self._conn: psycopg.AsyncConnection | None = None
        self._down_since: float | None = None
        self._resting_until = 0.0

    async def delivered(self, job_ids: list[str]) -> set[str]:
        """The subset of ``job_ids`` already delivered; empty if unknown."""
        valid = [job_id for job_id in job_ids if _is_uuid(job_id)]
        if not valid or time.monotonic() < self._resting_until:
            return set()
        try:
            conn = await self._connection()
            cursor = await conn.execute(DELIVERED_QUERY, (valid,))
            delivered = {row[0] for row in await cursor.fetchall()}
        except psycopg.Error as error:
            await self._failed(error)
            return set()
        if self._down_since is not None:
            down_ms = int((time.monotonic() - self._down_since) * 1000)
            log.info("delivered lookup restored", extra={"duration_ms": down_ms})
            self._down_since = None
        return delivered

    @property
    def resting(self) -> bool:
        """Whether lookups are skipped after a recent failure."""
        return time.monotonic() < self._resting_until

    async def _failed(self, error: psycopg.Error) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "delivered lookup failed; sending without it until it answers",
                extra={"error": str(error).strip().splitlines()[0]},
            )
        self._resting_until = now + RETRY_AFTER_FAILURE_S
        await self.close()

    async def close(self) -> None:
        """Close the connection, if open."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close()
            except psycopg.Error:
                pass

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._database_url,
                autocommit=True,
                **connection_options("switchboard-deliverer"),
            )
        return self._conn


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
