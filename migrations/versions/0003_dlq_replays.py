"""Remember which dead letters were replayed, so a replay never repeats by accident.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """One row per replayed dead letter, keyed by where it sits in Kafka."""
    op.execute(
        """
        CREATE TABLE dlq_replays (
            topic           text NOT NULL,
            kafka_partition integer NOT NULL,
            kafka_offset    bigint NOT NULL,
            job_id          uuid NOT NULL,
            attempt         integer NOT NULL,
            replay_count    integer NOT NULL DEFAULT 1,
            first_replayed_at timestamptz NOT NULL DEFAULT now(),
            replayed_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (topic, kafka_partition, kafka_offset)
        );
        CREATE INDEX dlq_replays_job ON dlq_replays (job_id);
        """
    )


def downgrade() -> None:
    """Forget replays."""
    op.execute("DROP TABLE dlq_replays;")
