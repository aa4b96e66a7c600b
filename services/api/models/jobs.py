"""Job bodies and answers: the recorder's projection of notify.jobs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from switchboard.domain import ChannelType, JobState

DEFAULT_PAGE = 50
MAX_PAGE = 200


class JobQuery(BaseModel):
    """Filters and paging of the job list; every filter given must hold."""

    state: JobState | None = Field(
        None, description="Only jobs in this state (each job's `state` field)."
    )
    # The first name of the state filter, kept so existing clients keep working.
    status: JobState | None = Field(
        None, deprecated=True, description="Deprecated alias of `state`."
    )
    channel_id: uuid.UUID | None = Field(None, description="Only this channel's jobs.")
    rule_id: uuid.UUID | None = Field(None, description="Only this rule's jobs.")
    alert_id: str | None = Field(
        None, max_length=500, description="Only jobs of this alert."
    )
    since: datetime | None = Field(
        None, description="Created at or after (UTC when no offset is given)."
    )
    until: datetime | None = Field(
        None, description="Created before (UTC when no offset is given)."
    )
    cursor: str | None = Field(
        None, max_length=500, description="`next_cursor` of the previous page."
    )
    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Page size.")

    def chosen_state(self) -> JobState | None:
        """The state filter, given as ``state`` or as its alias ``status``."""
        # Read through model_dump: pydantic warns on every attribute access to
        # a deprecated field.
        return self.state or self.model_dump(include={"status"})["status"]


class JobPublic(BaseModel):
    """One delivery job and its current state."""

    job_id: uuid.UUID = Field(description="Deterministic from event, rule and channel.")
    channel_id: uuid.UUID = Field(description="The channel delivered to.")
    rule_id: uuid.UUID | None = Field(description="The matching rule; null for a test.")
    channel_type: ChannelType = Field(description="The channel's type.")
    event_id: str = Field(description="The alert event that created the job.")
    alert_id: str = Field(description="The alert the event belongs to.")
    event_kind: str = Field(description="OPEN, ACKNOWLEDGED or CLOSED.")
    severity: str = Field(description="The alert's severity.")
    state: JobState = Field(description="The job's current state.")
    attempts: int = Field(description="Delivery attempts made so far.")
    last_status_code: int | None = Field(
        description="HTTP or SMTP status of the last try."
    )
    last_reason: str | None = Field(description="Outcome reason of the last attempt.")
    last_error: str | None = Field(description="Error text of the last attempt.")
    event_occurred_at: datetime = Field(description="When the alert event happened.")
    created_at: datetime = Field(description="When the job was created.")
    updated_at: datetime = Field(description="When its state last changed.")
    delivered_at: datetime | None = Field(description="When it was delivered.")
    next_attempt_at: datetime | None = Field(description="When the next retry is due.")


class AttemptPublic(BaseModel):
    """The outcome of one attempt (or a suppression or cancellation)."""

    attempt: int = Field(description="The attempt number, from 1 (0 for suppressed).")
    state: JobState = Field(description="The state the attempt led to.")
    status_code: int | None = Field(
        description="HTTP or SMTP status, where there is one."
    )
    reason: str | None = Field(description="Outcome reason from a closed set.")
    error: str | None = Field(description="Error text, secrets removed.")
    duration_ms: int | None = Field(description="How long the attempt took.")
    occurred_at: datetime = Field(description="When the outcome was reported.")


class JobDetail(JobPublic):
    """One job with every attempt, oldest first."""

    log: list[AttemptPublic] = Field(description="The attempts, in order.")


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    items: list[JobPublic] = Field(description="The jobs on this page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RetryQueued(BaseModel):
    """A dead job queued again."""

    job_id: uuid.UUID = Field(description="The same job id.")
    attempt: int = Field(description="The attempt number now queued.")
