"""Mark outbox rows Kafka refuses for good; claim each retry of a job once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Failure columns on the outbox and one claim row per retried attempt."""
    op.execute(
        """
        ALTER TABLE config_outbox
            ADD COLUMN failed_at timestamptz,
            ADD COLUMN error     text;
        CREATE TABLE job_retry_claims (
            job_id     uuid NOT NULL,
            attempt    integer NOT NULL,
            claimed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (job_id, attempt)
        );
        """
    )


def downgrade() -> None:
    """Forget retry claims and outbox failures."""
    op.execute(
        """
        DROP TABLE job_retry_claims;
        ALTER TABLE config_outbox DROP COLUMN error, DROP COLUMN failed_at;
        """
    )
