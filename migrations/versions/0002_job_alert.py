"""Keep each job's alert and test flag, so a dead job can be re-queued from the tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the alert (as the AlertEvent's JSON) and the test flag to jobs."""
    op.execute(
        """
        ALTER TABLE notification_jobs ADD COLUMN alert jsonb;
        ALTER TABLE notification_jobs ADD COLUMN is_test boolean NOT NULL DEFAULT false;
        """
    )


def downgrade() -> None:
    """Drop the alert and test flag."""
    op.execute(
        """
        ALTER TABLE notification_jobs DROP COLUMN is_test;
        ALTER TABLE notification_jobs DROP COLUMN alert;
        """
    )
