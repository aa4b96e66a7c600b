"""An outbox for job events, published by the relay to notify.jobs.

The job tables are a projection of notify.jobs that the recorder alone writes.
A job event that must be published together with a database change (the legacy
cutover's copied history, written in the cutover's transaction) goes through
this table: the relay publishes its rows in id order to notify.jobs, keyed by
job id, as it publishes ``config_outbox`` to notify.config. A separate table
rather than a column of ``config_outbox``, so that a relay of an older release
still running during an upgrade never sends a job event to notify.config.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the job-event outbox."""
    op.execute(
        """
        CREATE TABLE job_outbox (
            id            bigserial PRIMARY KEY,
            message_key   text NOT NULL,
            payload       bytea NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            published_at  timestamptz,
            failed_at     timestamptz,
            error         text
        );
        CREATE INDEX job_outbox_unpublished ON job_outbox (id)
            WHERE published_at IS NULL AND failed_at IS NULL;
        """
    )


def downgrade() -> None:
    """Drop the job-event outbox (unpublished events in it are lost)."""
    op.execute("DROP TABLE job_outbox;")
