"""Re-queue dead jobs in bulk, through the same path as the API's retry.

Each selected job gets the API's retry command (same job id, next attempt
number, the alert kept in its row) and the API's acknowledged produce of the
``queued`` job event and the command. The row itself changes only when the
recorder reads that event, as for a retry a customer asks for.

Until then the row still says ``dead``, so a second retry (from here, the API
or a dead-letter replay) would queue the same attempt again. Each attempt is
therefore claimed once in ``job_retry_claims``, in the PostgreSQL transaction
that waits for Kafka's acknowledgement: a refused produce leaves no claim.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from confluent_kafka import Producer
from psycopg.rows import dict_row

from services.api.errors import ApiError
from services.api.publish import queue_command
from services.api.routes.jobs import claim_retry, retry_command
from switchboard.codec import Codec
from switchboard.domain import JobState

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 1000


@dataclass(frozen=True)
class DeadJobFilter:
    """Which dead jobs to re-queue; empty fields match anything."""

    tenant_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None
    reason: str | None = None
    since: datetime | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def empty(self) -> bool:
        """Whether nothing narrows the selection."""
        return not (self.tenant_id or self.channel_id or self.reason or self.since)


def dead_jobs(
    conn: psycopg.Connection, selection: DeadJobFilter
) -> list[dict[str, Any]]:
    """Dead jobs matching ``selection``, those that died first first."""
    clauses, params = ["state = %s"], [str(JobState.DEAD)]
    given = {
        "tenant_id = %s": selection.tenant_id,
        "channel_id = %s": selection.channel_id,
        "last_reason = %s": selection.reason,
        "updated_at >= %s": selection.since,
    }
    for clause, value in given.items():
        if value is not None:
            clauses.append(clause)
            params.append(value)
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            f"SELECT * FROM notification_jobs WHERE {' AND '.join(clauses)}"
            " ORDER BY updated_at, job_id LIMIT %s",
            (*params, selection.limit),
        ).fetchall()


@dataclass(frozen=True)
class RetryResult:
    """One dead job's re-queue: the attempt queued, or why it was not."""

    job: dict[str, Any]
    queued: bool
    attempt: int | None = None
    detail: str = ""
    kafka_refused: bool = False


def retry_jobs(
    conn: psycopg.Connection,
    producer: Producer,
    codec: Codec,
    jobs: list[dict[str, Any]],
    dry_run: bool = False,
) -> list[RetryResult]:
    """Queue the next attempt of each job; a dry run only says which attempt.

    Each attempt is claimed once on ``conn`` (autocommit), so a job whose retry
    is already queued is reported, not queued again. Stops at the first job
    Kafka does not acknowledge, since the next ones would fail the same way.
    """
    results = []
    for row in jobs:
        results.append(_retry_one(conn, producer, codec, row, dry_run))
        if results[-1].kafka_refused:
            break
    return results


class _AlreadyQueued(Exception):
    """Raised inside the claim's transaction to roll it back."""


def _retry_one(
    conn: psycopg.Connection,
    producer: Producer,
    codec: Codec,
    row: dict[str, Any],
    dry_run: bool,
) -> RetryResult:
    try:
        command = retry_command(row)
        if not dry_run:
            _queue_once(conn, producer, codec, command)
    except _AlreadyQueued:
        detail = f"attempt {command['attempt']} is already queued"
        return RetryResult(row, False, detail=detail)
    except ApiError as error:
        detail = "; ".join(f"{field}: {text}" for field, text in error.problems)
        return RetryResult(
            row, False, detail=detail, kafka_refused=error.status_code == 503
        )
    if not dry_run:
        log.info(
            "dead job re-queued",
            extra={
                "tenant": str(row["tenant_id"]),
                "channel": str(row["channel_id"]),
                "job_id": str(row["job_id"]),
                "attempt": command["attempt"],
            },
        )
    return RetryResult(row, not dry_run, command["attempt"])


def _queue_once(
    conn: psycopg.Connection,
    producer: Producer,
    codec: Codec,
    command: dict[str, Any],
) -> None:
    """Claim the command's attempt and queue it; raise _AlreadyQueued if claimed."""
    with conn.transaction():
        if not claim_retry(conn, command["job_id"], command["attempt"]):
            raise _AlreadyQueued
        queue_command(producer, codec, command)
