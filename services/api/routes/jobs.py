"""``/customer/notification-jobs``: what happened to each notification, and retry.

The job tables are written by the recorder alone; the API only reads them. A
retry therefore does not change a row: it produces a new ``queued`` job event
and the command for the next attempt, and the row follows once the recorder has
read them.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query, Request

from services.api.deps import Conn, State, Tenant
from services.api.errors import (
    ERROR_RESPONSES,
    ApiError,
    ErrorBody,
    conflict,
    not_found,
    refuse_unknown_query,
)
from services.api.models.common import require_storable
from services.api.models.jobs import JobDetail, JobPage, JobQuery, RetryQueued
from services.api.publish import queue_command
from switchboard.domain import JobState

router = APIRouter(
    prefix="/customer/notification-jobs",
    tags=["notification jobs"],
    responses=ERROR_RESPONSES,
)


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The opaque cursor that continues after the job (created_at, job_id)."""
    raw = json.dumps([created_at.isoformat(), str(job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor stands for, or a 422 naming ``cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        if not isinstance(created_at, str) or not isinstance(job_id, str):
            raise TypeError("cursor parts are not text")
        return datetime.fromisoformat(created_at), uuid.UUID(job_id)
    except (binascii.Error, ValueError, TypeError, UnicodeError):
        raise ApiError(422, [("cursor", "not a cursor this API returned")]) from None


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _where(tenant: uuid.UUID, query: JobQuery) -> tuple[str, list[Any]]:
    clauses, params = ["tenant_id = %s"], [tenant]
    given = {
        "state = %s": str(state) if (state := query.chosen_state()) else None,
        "channel_id = %s": query.channel_id,
        "rule_id = %s": query.rule_id,
        "alert_id = %s": query.alert_id,
        "created_at >= %s": _utc(query.since),
        "created_at < %s": _utc(query.until),
    }
    for clause, value in given.items():
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if query.cursor:
        clauses.append("(created_at, job_id) < (%s, %s)")
        params.extend(decode_cursor(query.cursor))
    return " AND ".join(clauses), params


def _known_filters(request: Request) -> None:
    """Refuse a query parameter the list does not take, and two differing states.

    An unknown parameter (a typo, or a filter this list does not have) would
    otherwise be ignored, and the answer would look filtered while it is not.
    """
    refuse_unknown_query(request, JobQuery.model_fields)
    given = request.query_params
    if "state" in given and "status" in given and given["state"] != given["status"]:
        raise ApiError(
            422,
            [("status", "`status` is an alias of `state`; give one of them")],
        )


@router.get("", response_model=JobPage, summary="List jobs")
def list_jobs(
    request: Request,
    conn: Conn,
    tenant: Tenant,
    query: Annotated[JobQuery, Query()],
) -> dict[str, Any]:
    """The tenant's jobs, newest first, filtered, one page at a time.

    Filter by `state` (each job's `state`; `status` is a deprecated alias).
    A query parameter the list does not take is a 422 naming it.
    """
    _known_filters(request)
    require_storable(query.alert_id or "", "alert_id")
    where, params = _where(tenant, query)
    rows = conn.execute(
        f"SELECT * FROM notification_jobs WHERE {where}"
        " ORDER BY created_at DESC, job_id DESC LIMIT %s",
        (*params, query.limit + 1),
    ).fetchall()
    page, more = rows[: query.limit], len(rows) > query.limit
    last = page[-1] if more else None
    return {
        "items": page,
        "next_cursor": encode_cursor(last["created_at"], last["job_id"])
        if last
        else None,
    }


def _load(conn: Conn, tenant: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT * FROM notification_jobs WHERE job_id = %s AND tenant_id = %s",
        (job_id, tenant),
    ).fetchone()
    if row is None:
        raise not_found("job_id", "notification job")
    return row


@router.get(
    "/{job_id}", response_model=JobDetail, summary="Read a job and its attempts"
)
def read_job(conn: Conn, tenant: Tenant, job_id: uuid.UUID) -> dict[str, Any]:
    """One job with the outcome of every attempt, oldest first."""
    row = _load(conn, tenant, job_id)
    log = conn.execute(
        "SELECT * FROM notification_log WHERE job_id = %s"
        " ORDER BY attempt, occurred_at, id",
        (job_id,),
    ).fetchall()
    return {**row, "log": log}


def _stored_alert(row: dict[str, Any]) -> dict[str, Any]:
    alert = dict(row.get("alert") or {})
    if not alert:
        raise conflict(
            "job_id", "this job's alert was not recorded, so it cannot be re-sent"
        )
    occurred = alert.get("occurred_at")
    if isinstance(occurred, int | float):
        alert["occurred_at"] = datetime.fromtimestamp(occurred / 1000, UTC)
    elif isinstance(occurred, str):
        alert["occurred_at"] = datetime.fromisoformat(occurred)
    return alert


def retry_command(row: dict[str, Any]) -> dict[str, Any]:
    """The DeliveryCommand of the next attempt of a dead job, from its row."""
    return {
        "job_id": str(row["job_id"]),
        "attempt": max(row["attempts"], row["state_attempt"]) + 1,
        "tenant_id": str(row["tenant_id"]),
        "channel_id": str(row["channel_id"]),
        "rule_id": str(row["rule_id"]) if row["rule_id"] else None,
        "channel_type": row["channel_type"],
        "created_at": row["created_at"],
        "not_before": None,
        "is_test": bool(row.get("is_test", False)),
        "alert": _stored_alert(row),
    }


@router.post(
    "/{job_id}/retry",
    response_model=RetryQueued,
    status_code=202,
    summary="Retry a dead job",
    responses={
        409: {
            "model": ErrorBody,
            "description": "The job is not dead, or its retry is already queued.",
        },
        503: {"model": ErrorBody, "description": "Kafka did not accept the retry."},
    },
)
def retry_job(
    state: State, conn: Conn, tenant: Tenant, job_id: uuid.UUID
) -> dict[str, Any]:
    """Queue a new attempt of a dead job (same job id, next attempt number)."""
    row = _load(conn, tenant, job_id)
    if row["state"] != JobState.DEAD:
        raise conflict(
            "job_id", f"only a dead job can be retried; this one is {row['state']}"
        )
    command = retry_command(row)
    # The row stays dead until the recorder reads the queued event, so a second
    # request meanwhile would send the same attempt again; one claim per attempt
    # prevents that. A produce Kafka refuses rolls the claim back.
    with conn.transaction():
        if not claim_retry(conn, job_id, command["attempt"]):
            raise conflict(
                "job_id", f"attempt {command['attempt']} of this job is already queued"
            )
        queue_command(state.producer, state.codec, command)
    return {"job_id": job_id, "attempt": command["attempt"]}


def claim_retry(
    conn: psycopg.Connection, job_id: uuid.UUID | str, attempt: int
) -> bool:
    """Claim the re-queue of one attempt of a job; False if it was claimed before.

    Every path that re-queues a dead job (this API, ``switchboard jobs retry``,
    dead-letter replay) claims the attempt inside the transaction that waits for
    Kafka's acknowledgement, so two of them racing send it once.
    """
    claimed = conn.execute(
        "INSERT INTO job_retry_claims (job_id, attempt) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING RETURNING job_id",
        (job_id, attempt),
    ).fetchone()
    return claimed is not None
