"""Which jobs the recorder has already recorded as delivered.

A command redelivered after a crash, or a duplicate retry, must not reach the
receiver again once its job is delivered. The lookup is one query per consumed
batch; when the database is unreachable the deliverer sends anyway, since a
duplicate carrying the same idempotency key is better than a lost notification.
"""

from __future__ import annotations

import logging
import uuid

import psycopg

log = logging.getLogger(__name__)

DELIVERED_QUERY = (
    "SELECT job_id::text FROM notification_jobs "
    "WHERE job_id = ANY(%s::uuid[]) AND state = 'delivered'"
)
CONNECT_TIMEOUT_S = 5


class DeliveredLookup:
    """Finds delivered jobs in notification_jobs, reconnecting when needed."""

    def __init__(self, database_url: str) -> None:
        """Query the database at ``database_url``."""
        self._database_url = database_url
        self._conn: psycopg.AsyncConnection | None = None

    async def delivered(self, job_ids: list[str]) -> set[str]:
        """The subset of ``job_ids`` already delivered; empty if unknown."""
        valid = [job_id for job_id in job_ids if _is_uuid(job_id)]
        if not valid:
            return set()
        try:
            conn = await self._connection()
            cursor = await conn.execute(DELIVERED_QUERY, (valid,))
            return {row[0] for row in await cursor.fetchall()}
        except psycopg.Error as error:
            log.warning(
                "delivered lookup failed; sending anyway", extra={"error": str(error)}
            )
            await self.close()
            return set()

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
                self._database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        return self._conn


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
