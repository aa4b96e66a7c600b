"""Turning finished old jobs and their attempts into job and attempt-log rows.

A ``COMPLETED`` job becomes a ``delivered`` job and a ``FAILED`` one a ``dead``
job, under its old id, so a re-run finds it. Each old attempt becomes one
``notification_log`` row: ``delivered`` when it succeeded, ``dead`` for the
last attempt of a failed job and ``retrying`` for the others. Old jobs did not
record the alert event, so the copied jobs carry no ``alert`` and a dead one
cannot be re-sent from the API; what the old payload says about the event
(event id, severity, time) is kept where it exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.cutover.legacy import LegacyAttempt, LegacyJob
from services.deliverer.outcome import Reason, classify_http
from switchboard.domain import EventKind, JobState, Severity

TERMINAL_STATES = {"COMPLETED": JobState.DELIVERED, "FAILED": JobState.DEAD}
UNFINISHED_STATUSES = frozenset({"PENDING", "PROCESSING"})
# What a job row shows when the old payload did not name the severity or kind.
UNKNOWN = "UNKNOWN"
HTTP_CHANNEL_TYPES = frozenset({"webhook"})


@dataclass(frozen=True)
class JobCopy:
    """The notification_jobs row and notification_log rows of one old job."""

    job: dict[str, Any]
    log: tuple[dict[str, Any], ...]


def terminal_state(job: LegacyJob) -> JobState | None:
    """delivered or dead for a finished old job; None otherwise."""
    return TERMINAL_STATES.get(str(job.status).strip().upper())


def unfinished(job: LegacyJob) -> bool:
    """Whether the old system was still working on the job."""
    return str(job.status).strip().upper() in UNFINISHED_STATUSES


def copy_job(
    job: LegacyJob, tenant_id: uuid.UUID, channel_id: uuid.UUID, channel_type: str
) -> JobCopy:
    """The rows of a finished old job delivered over ``channel_id``."""
    state = terminal_state(job)
    assert state is not None, "only finished jobs are copied"
    log = _log_rows(job, state, channel_type)
    last = log[-1]
    payload = job.payload if isinstance(job.payload, dict) else {}
    created_at = job.created_at or datetime.now(UTC)
    row = {
        "job_id": job.id,
        "tenant_id": tenant_id,
        "channel_id": channel_id,
        "rule_id": None,
        "channel_type": channel_type,
        "event_id": str(payload.get("event_id") or job.id),
        "alert_id": job.alert_id or str(payload.get("alert_id") or ""),
        "event_kind": _known(job.event_kind or payload.get("kind"), EventKind),
        "severity": _known(payload.get("severity"), Severity),
        "state": str(state),
        "attempts": last["attempt"],
        "state_attempt": last["attempt"],
        "state_rank": state.rank,
        "last_status_code": last["status_code"],
        "last_reason": last["reason"],
        "last_error": job.last_error or last["error"],
        "event_occurred_at": _time(payload.get("occurred_at")) or created_at,
        "created_at": created_at,
        "updated_at": job.updated_at or created_at,
        "delivered_at": last["occurred_at"] if state is JobState.DELIVERED else None,
    }
    return JobCopy(row, tuple(log))


def _log_rows(
    job: LegacyJob, state: JobState, channel_type: str
) -> list[dict[str, Any]]:
    attempts = job.attempt_rows
    if not attempts:
        # The old system counted attempts without recording them: one row for
        # the outcome keeps the job's history from looking empty.
        return [_outcome_row(job, state)]
    rows = []
    for index, attempt in enumerate(attempts):
        final = index == len(attempts) - 1
        rows.append(_attempt_row(job, attempt, state if final else None, channel_type))
    return rows


def _outcome_row(job: LegacyJob, state: JobState) -> dict[str, Any]:
    return {
        "attempt": max(job.attempts, 1),
        "state": str(state),
        "status_code": None,
        "reason": str(Reason.DELIVERED) if state is JobState.DELIVERED else None,
        "error": job.last_error,
        "duration_ms": None,
        "occurred_at": job.updated_at or job.created_at or datetime.now(UTC),
    }


def _attempt_row(
    job: LegacyJob, attempt: LegacyAttempt, final: JobState | None, channel_type: str
) -> dict[str, Any]:
    if attempt.ok:
        state = JobState.DELIVERED
    else:
        state = final if final is JobState.DEAD else JobState.RETRYING
    duration = None
    if attempt.started_at and attempt.finished_at:
        duration = int(
            (attempt.finished_at - attempt.started_at).total_seconds() * 1000
        )
    return {
        "attempt": attempt.attempt_no,
        "state": str(state),
        "status_code": attempt.http_status,
        "reason": _reason(attempt, channel_type),
        "error": attempt.error,
        "duration_ms": duration,
        "occurred_at": attempt.finished_at
        or attempt.started_at
        or job.updated_at
        or job.created_at
        or datetime.now(UTC),
    }


def _reason(attempt: LegacyAttempt, channel_type: str) -> str | None:
    if attempt.ok:
        return str(Reason.DELIVERED)
    if attempt.http_status is not None and channel_type in HTTP_CHANNEL_TYPES:
        return str(classify_http(attempt.http_status).reason)
    # The old system did not classify other failures; the error text stays.
    return None


def _known(value: Any, names: type[EventKind] | type[Severity]) -> str:
    text = str(value).strip().upper() if value is not None else ""
    return text if text in {str(name) for name in names} else UNKNOWN


def _time(value: Any) -> datetime | None:
    """A payload timestamp: ISO 8601 text or epoch milliseconds."""
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000, UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None
