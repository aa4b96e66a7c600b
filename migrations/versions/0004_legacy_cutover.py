"""Remember what the legacy cutover converted, and each of its runs.

A row of the old integrations system is converted once: re-running the cutover
must not bring back a channel a customer has deleted since, and dropping the old
tables must know which old rows were carried over. ``legacy_cutover_items``
remembers every converted old row (integration, route or job) with the id of
what it became; ``legacy_cutover_runs`` records each apply that wrote
something (or the first one) and each drop.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE legacy_cutover_items (
    legacy_table  text NOT NULL CHECK (legacy_table IN
                      ('integrations', 'integration_routes', 'delivery_jobs')),
    legacy_id     uuid NOT NULL,
    new_id        uuid NOT NULL,
    converted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (legacy_table, legacy_id)
);

CREATE TABLE legacy_cutover_runs (
    id       bigserial PRIMARY KEY,
    action   text NOT NULL CHECK (action IN ('apply', 'drop')),
    summary  jsonb NOT NULL DEFAULT '{}'::jsonb,
    at       timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP TABLE legacy_cutover_runs;
DROP TABLE legacy_cutover_items;
"""


def upgrade() -> None:
    """Create the cutover ledger and run log."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop the cutover ledger and run log."""
    op.execute(DOWNGRADE)
