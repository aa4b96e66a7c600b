"""Building DeliveryCommands and JobEvents, the two records every stage exchanges.

The router creates commands and ``queued``/``suppressed`` events, deliverers the
outcome events, the API and operators ``queued`` events for retries. Building
them in one place keeps every JobEvent self-contained (it repeats the job's
identity) so the recorder can rebuild the job tables from events alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from switchboard.domain import JobState, job_id_for


def utc_now() -> datetime:
    """The current time, timezone-aware, at millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_command(
    alert: dict[str, Any],
    channel_id: str,
    channel_type: str,
    rule_id: str | None,
    *,
    is_test: bool = False,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The first DeliveryCommand of a new job for ``alert`` on one channel."""
    return {
        "job_id": job_id_for(str(alert["event_id"]), rule_id, channel_id),
        "attempt": 1,
        "tenant_id": alert["tenant_id"],
        "channel_id": channel_id,
        "rule_id": rule_id,
        "channel_type": channel_type,
        "created_at": created_at or utc_now(),
        "not_before": None,
        "is_test": is_test,
        "alert": alert,
    }


def job_event(
    command: dict[str, Any],
    state: JobState,
    attempt: int,
    *,
    occurred_at: datetime | None = None,
    status_code: int | None = None,
    reason: str | None = None,
    error: str | None = None,
    duration_ms: int | None = None,
    next_attempt_at: datetime | None = None,
) -> dict[str, Any]:
    """A JobEvent for the job of ``command`` entering ``state`` at ``attempt``.

    ``attempt`` is the attempt about to be made for ``queued`` and the attempt
    that produced the outcome otherwise (0 for ``suppressed``). Queued events
    carry the alert itself, so a dead job can later be re-queued from the job
    tables alone; other events only identify it.
    """
    alert = command["alert"]
    return {
        "job_id": command["job_id"],
        "state": str(state),
        "attempt": attempt,
        "occurred_at": occurred_at or utc_now(),
        "tenant_id": command["tenant_id"],
        "channel_id": command["channel_id"],
        "rule_id": command["rule_id"],
        "channel_type": command["channel_type"],
        "event_id": str(alert["event_id"]),
        "alert_id": alert["alert_id"],
        "event_kind": str(alert["kind"]),
        "severity": str(alert["severity"]),
        "event_occurred_at": alert["occurred_at"],
        "status_code": status_code,
        "reason": reason,
        "error": error,
        "duration_ms": duration_ms,
        "next_attempt_at": next_attempt_at,
        "is_test": command.get("is_test", False),
        "alert": alert if state is JobState.QUEUED else None,
    }
