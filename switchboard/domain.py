"""Domain vocabulary shared by every service: enums, job ids and their ordering."""

from __future__ import annotations

import uuid
from enum import StrEnum


class EventKind(StrEnum):
    """What happened to an alert."""

    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    CLOSED = "CLOSED"


class Severity(StrEnum):
    """Alert severity, most severe first."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFO = "INFO"

    @property
    def rank(self) -> int:
        """Higher is more severe: CRITICAL 4 … INFO 0."""
        return _SEVERITY_RANK[self]

    def at_least(self, minimum: Severity) -> bool:
        """Whether this severity is at least as severe as ``minimum``."""
        return self.rank >= minimum.rank


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class ChannelType(StrEnum):
    """The seven kinds of notification channel."""

    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    TEAMS = "teams"
    WEBHOOK = "webhook"
    SNMP = "snmp"
    EMAIL = "email"
    MQTT = "mqtt"


class JobState(StrEnum):
    """States of a delivery job."""

    QUEUED = "queued"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DEAD = "dead"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"

    @property
    def rank(self) -> int:
        """Order of states within one attempt number; see :func:`supersedes`."""
        return _STATE_RANK[self]

    @property
    def terminal(self) -> bool:
        """Whether nothing happens to the job after this state unless retried."""
        return self in (
            JobState.DELIVERED,
            JobState.DEAD,
            JobState.SUPPRESSED,
            JobState.CANCELLED,
        )


_STATE_RANK = {
    JobState.QUEUED: 0,
    JobState.RETRYING: 1,
    JobState.CANCELLED: 2,
    JobState.DEAD: 2,
    JobState.SUPPRESSED: 2,
    JobState.DELIVERED: 3,
}


def supersedes(
    new_state: JobState, new_attempt: int, old_state: JobState, old_attempt: int
) -> bool:
    """Whether a job event moves a job forward from its recorded state.

    Events are ordered by (attempt, state rank): ``queued`` for attempt N comes
    before the outcome of attempt N, which comes before anything of attempt N+1.
    ``delivered`` is final: nothing supersedes it, so a late ``retrying`` or a
    replayed command can never undo a delivery.
    """
    if old_state is JobState.DELIVERED:
        return False
    return (new_attempt, new_state.rank) > (old_attempt, old_state.rank)


# Fixed namespace so job ids are the same in every process and every run.
JOB_ID_NAMESPACE = uuid.UUID("7d0c6b5e-4a83-4f1e-9b2e-5f0d3c1a9e61")


def job_id_for(event_id: str, rule_id: str | None, channel_id: str) -> str:
    """The deterministic job id of one event delivered by one rule to one channel."""
    return str(
        uuid.uuid5(JOB_ID_NAMESPACE, f"{event_id}/{rule_id or '-'}/{channel_id}")
    )
