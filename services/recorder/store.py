"""Applying job events to notification_jobs and notification_log.

The job tables are a projection of notify.jobs, so applying must be idempotent
and monotonic: the same events in the same order give the same rows however
they are batched and however often they are replayed. Every value written comes
from the event (never ``now()``); a job row moves only forward in
(attempt, state rank) order and never leaves ``delivered``, the rule of
:func:`switchboard.domain.supersedes`; each attempt's outcome is one log row,
unique on (job_id, attempt, state).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from switchboard.domain import JobState

log = logging.getLogger(__name__)

# States that are the outcome of an attempt (or stand in for one) get a log row.
LOGGED_STATES = frozenset(
    {
        JobState.RETRYING,
        JobState.DELIVERED,
        JobState.DEAD,
        JobState.SUPPRESSED,
        JobState.CANCELLED,
    }
)
# States that report an attempt made, counted in ``attempts``.
ATTEMPTED_STATES = frozenset({JobState.RETRYING, JobState.DELIVERED, JobState.DEAD})

UPSERT_JOB = """
INSERT INTO notification_jobs AS j (
    job_id, tenant_id, channel_id, rule_id, channel_type, event_id, alert_id,
    event_kind, severity, state, attempts, state_attempt, state_rank,
    last_status_code, last_reason, last_error, event_occurred_at, created_at,
    updated_at, delivered_at, next_attempt_at, alert, is_test
) VALUES (
    %(job_id)s, %(tenant_id)s, %(channel_id)s, %(rule_id)s, %(channel_type)s,
    %(event_id)s, %(alert_id)s, %(event_kind)s, %(severity)s, %(state)s,
    %(attempts)s, %(state_attempt)s, %(state_rank)s, %(status_code)s, %(reason)s,
    %(error)s, %(event_occurred_at)s, %(occurred_at)s, %(occurred_at)s,
    %(delivered_at)s, %(next_attempt_at)s, %(alert)s, %(is_test)s
)
ON CONFLICT (job_id) DO UPDATE SET
    state = EXCLUDED.state,
    attempts = GREATEST(j.attempts, EXCLUDED.attempts),
    state_attempt = EXCLUDED.state_attempt,
    state_rank = EXCLUDED.state_rank,
    -- A queued retry keeps showing the outcome that came before it.
    last_status_code = CASE WHEN EXCLUDED.state = 'queued'
        THEN j.last_status_code ELSE EXCLUDED.last_status_code END,
    last_reason = CASE WHEN EXCLUDED.state = 'queued'
        THEN j.last_reason ELSE EXCLUDED.last_reason END,
    last_error = CASE WHEN EXCLUDED.state = 'queued'
        THEN j.last_error ELSE EXCLUDED.last_error END,
    created_at = LEAST(j.created_at, EXCLUDED.created_at),
    updated_at = EXCLUDED.updated_at,
    delivered_at = COALESCE(EXCLUDED.delivered_at, j.delivered_at),
    next_attempt_at = EXCLUDED.next_attempt_at,
    -- Only queued events carry the alert; keep it once known.
    alert = COALESCE(j.alert, EXCLUDED.alert),
    is_test = j.is_test OR EXCLUDED.is_test
WHERE j.state <> 'delivered'
  AND (EXCLUDED.state_attempt, EXCLUDED.state_rank) > (j.state_attempt, j.state_rank)
"""

INSERT_LOG = """
INSERT INTO notification_log (
    job_id, attempt, state, status_code, reason, error, duration_ms, occurred_at
) VALUES (
    %(job_id)s, %(attempt)s, %(state)s, %(status_code)s, %(reason)s, %(error)s,
    %(duration_ms)s, %(occurred_at)s
)
ON CONFLICT (job_id, attempt, state) DO NOTHING
"""


def job_row(event: dict[str, Any]) -> dict[str, Any]:
    """The parameters of both statements for one decoded JobEvent."""
    event = without_nul(event)
    state = JobState(str(event["state"]))
    return {
        **event,
        "state": str(state),
        "channel_type": str(event["channel_type"]),
        "attempts": event["attempt"] if state in ATTEMPTED_STATES else 0,
        "state_attempt": event["attempt"],
        "state_rank": state.rank,
        "delivered_at": event["occurred_at"] if state is JobState.DELIVERED else None,
        "alert": _alert_json(event.get("alert")),
        "is_test": bool(event.get("is_test", False)),
    }


def without_nul(value: Any) -> Any:
    """``value`` with every NUL in its text replaced by U+FFFD.

    PostgreSQL text and jsonb cannot hold NUL, and alerts from upstream systems
    may carry one; a marked character is better than losing the event.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def _alert_json(alert: dict[str, Any] | None) -> Jsonb | None:
    """The alert as JSON, with its time as ISO 8601, for re-queueing a dead job."""
    if alert is None:
        return None
    return Jsonb({**alert, "occurred_at": alert["occurred_at"].isoformat()})


def storable(event: dict[str, Any]) -> bool:
    """Whether the event's ids fit the tables' uuid columns."""
    ids = [event["job_id"], event["tenant_id"], event["channel_id"]]
    if event.get("rule_id") is not None:
        ids.append(event["rule_id"])
    try:
        for value in ids:
            uuid.UUID(value)
    except ValueError:
        return False
    return True


def apply_events(conn: psycopg.Connection, events: list[dict[str, Any]]) -> int:
    """Apply ``events`` in order in one transaction; returns how many were stored.

    If the batch fails on one bad event, it is applied again event by event so
    the bad one is logged and skipped instead of stopping the recorder.
    """
    rows = [job_row(event) for event in events]
    try:
        with conn.transaction():
            _apply_rows(conn, rows)
        return len(rows)
    except (psycopg.DataError, psycopg.IntegrityError):
        pass
    stored = 0
    with conn.transaction():
        for row in rows:
            try:
                with conn.transaction():
                    _apply_rows(conn, [row])
                stored += 1
            except (psycopg.DataError, psycopg.IntegrityError) as error:
                log.error(
                    "job event not storable; skipped",
                    extra={"job_id": row["job_id"], "error": str(error)},
                )
    return stored


def _apply_rows(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(UPSERT_JOB, rows)
        logged = [row for row in rows if JobState(row["state"]) in LOGGED_STATES]
        if logged:
            cursor.executemany(INSERT_LOG, logged)
