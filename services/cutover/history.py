"""Turning finished old jobs and their attempts into job events for notify.jobs.

The job tables are a projection of ``notify.jobs`` that the recorder alone
writes, so the copied history is not written to them: each finished old job
becomes the JobEvents that tell its story, which the apply queues in
``job_outbox`` and the relay publishes; the recorder then writes the rows, and
a replay of ``notify.jobs`` writes them again.

The events of one old job, under its old id (so a re-run finds it) and on the
channel converted from its integration, without a rule:

- ``queued`` at the job's ``created_at`` for its first attempt;
- one event per old attempt, in attempt order: ``retrying`` for every attempt
  but the last, and the job's final state for the last one (``COMPLETED`` is
  ``delivered``, ``FAILED`` is ``dead``), each with the attempt's HTTP status,
  reason, error text and duration, at the time it finished;
- an old job without attempt rows (the old system counted attempts without
  always recording them) gets one outcome event instead, so its history does
  not look empty.

What the recorder makes of them is what the job tables show: ``created_at`` is
the job's creation, ``updated_at`` the time of its last attempt (the old row's
``updated_at`` is not carried), the last error that of the last attempt (the
job's ``last_error`` where the attempt has none). Old jobs did not record the
alert event, so the copied jobs carry no ``alert`` and a dead one cannot be
re-sent; what the old payload says about the event (event id, severity, time)
is kept where it exists. Error text has the integration's secrets removed and
is bounded like a deliverer's, since it now travels through Kafka.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.cutover.legacy import LegacyAttempt, LegacyJob
from services.deliverer.outcome import MAX_ERROR_CHARS, Reason, classify_http
from services.deliverer.redact import redact
from switchboard.domain import EventKind, JobState, Severity

TERMINAL_STATES = {"COMPLETED": JobState.DELIVERED, "FAILED": JobState.DEAD}
UNFINISHED_STATUSES = frozenset({"PENDING", "PROCESSING"})
# What a job row shows when the old payload did not name the severity or kind.
UNKNOWN = "UNKNOWN"
HTTP_CHANNEL_TYPES = frozenset({"webhook"})
# JobEvent's int fields are Avro ints; a value beyond them is unknown, not an error.
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class JobCopy:
    """The JobEvents of one finished old job, in the order they are published."""

    events: tuple[dict[str, Any], ...]

    @property
    def attempts(self) -> int:
        """How many attempt outcomes the events carry (rows of the attempt log)."""
        return sum(1 for event in self.events if event["state"] != JobState.QUEUED)


def terminal_state(job: LegacyJob) -> JobState | None:
    """delivered or dead for a finished old job; None otherwise."""
    return TERMINAL_STATES.get(str(job.status).strip().upper())


def unfinished(job: LegacyJob) -> bool:
    """Whether the old system was still working on the job."""
    return str(job.status).strip().upper() in UNFINISHED_STATUSES


def copy_job(
    job: LegacyJob,
    tenant_id: uuid.UUID,
    channel_id: uuid.UUID,
    channel_type: str,
    hidden: tuple[str, ...] = (),
) -> JobCopy:
    """The events of a finished old job delivered over ``channel_id``.

    ``hidden`` are the integration's secret values, removed from error text.
    """
    state = terminal_state(job)
    assert state is not None, "only finished jobs are copied"
    base = _identity(job, tenant_id, channel_id, channel_type)
    outcomes = _outcomes(job, state, channel_type)
    queued = _event(
        base,
        JobState.QUEUED,
        outcomes[0]["attempt"],
        _utc(job.created_at) or outcomes[0]["occurred_at"],
    )
    events = [queued] + [
        {**base, **outcome, "error": _error_text(outcome["error"], hidden)}
        for outcome in outcomes
    ]
    return JobCopy(tuple(events))


def _identity(
    job: LegacyJob, tenant_id: uuid.UUID, channel_id: uuid.UUID, channel_type: str
) -> dict[str, Any]:
    """The fields every event of the job repeats, so each is self-contained."""
    payload = job.payload if isinstance(job.payload, dict) else {}
    created_at = _utc(job.created_at) or datetime.now(UTC)
    return {
        "job_id": str(job.id),
        "tenant_id": str(tenant_id),
        "channel_id": str(channel_id),
        "rule_id": None,
        "channel_type": channel_type,
        "event_id": str(payload.get("event_id") or job.id),
        "alert_id": job.alert_id or str(payload.get("alert_id") or ""),
        "event_kind": _known(job.event_kind or payload.get("kind"), EventKind),
        "severity": _known(payload.get("severity"), Severity),
        "event_occurred_at": _time(payload.get("occurred_at")) or created_at,
        "next_attempt_at": None,
        "is_test": False,
        "alert": None,
    }


def _event(
    base: dict[str, Any], state: JobState, attempt: int, occurred_at: datetime
) -> dict[str, Any]:
    return {
        **base,
        "state": str(state),
        "attempt": attempt,
        "occurred_at": occurred_at,
        "status_code": None,
        "reason": None,
        "error": None,
        "duration_ms": None,
    }


def _outcomes(
    job: LegacyJob, state: JobState, channel_type: str
) -> list[dict[str, Any]]:
    """The outcome fields of each attempt, the last one carrying the final state."""
    attempts = job.attempt_rows
    if not attempts:
        return [_outcome_without_attempts(job, state)]
    last = len(attempts) - 1
    return [
        _attempt_outcome(
            job, attempt, state if index == last else JobState.RETRYING, channel_type
        )
        for index, attempt in enumerate(attempts)
    ]


def _outcome_without_attempts(job: LegacyJob, state: JobState) -> dict[str, Any]:
    return {
        "state": str(state),
        "attempt": _int32(max(job.attempts, 1)) or 1,
        "occurred_at": _utc(job.updated_at or job.created_at) or datetime.now(UTC),
        "status_code": None,
        "reason": str(Reason.DELIVERED) if state is JobState.DELIVERED else None,
        "error": job.last_error,
        "duration_ms": None,
    }


def _attempt_outcome(
    job: LegacyJob, attempt: LegacyAttempt, state: JobState, channel_type: str
) -> dict[str, Any]:
    final = state is not JobState.RETRYING
    error = attempt.error or (job.last_error if final else None)
    return {
        "state": str(state),
        "attempt": attempt.attempt_no,
        "occurred_at": _utc(
            attempt.finished_at
            or attempt.started_at
            or job.updated_at
            or job.created_at
        )
        or datetime.now(UTC),
        "status_code": _int32(attempt.http_status),
        "reason": _reason(state, attempt, channel_type),
        "error": error,
        "duration_ms": _duration_ms(attempt),
    }


def _reason(state: JobState, attempt: LegacyAttempt, channel_type: str) -> str | None:
    # The old system did not classify failures; an HTTP status can be.
    if state is JobState.DELIVERED:
        return str(Reason.DELIVERED)
    if attempt.ok or attempt.http_status is None:
        return None
    if channel_type not in HTTP_CHANNEL_TYPES:
        return None
    reason = classify_http(attempt.http_status).reason
    return None if reason is Reason.DELIVERED else str(reason)


def _duration_ms(attempt: LegacyAttempt) -> int | None:
    if not (attempt.started_at and attempt.finished_at):
        return None
    elapsed = attempt.finished_at - attempt.started_at
    return _int32(int(elapsed.total_seconds() * 1000))


def _int32(value: int | None) -> int | None:
    """``value`` if an Avro int holds it and it is not negative; else unknown."""
    if value is None or not 0 <= value <= INT32_MAX:
        return None
    return value


def _error_text(text: str | None, hidden: tuple[str, ...]) -> str | None:
    """Old error text without the integration's secrets, bounded like a deliverer's."""
    text = redact(text, hidden)
    if text is None or len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 1] + "…"


def _known(value: Any, names: type[EventKind] | type[Severity]) -> str:
    text = str(value).strip().upper() if value is not None else ""
    return text if text in {str(name) for name in names} else UNKNOWN


def _utc(moment: datetime | None) -> datetime | None:
    """A timestamp as UTC; an old column without a time zone is read as UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time(value: Any) -> datetime | None:
    """A payload timestamp: ISO 8601 text or epoch milliseconds."""
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000, UTC)
        if isinstance(value, str):
            return _utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError, OSError):
        return None
    return None
