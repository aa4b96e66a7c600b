"""Tenants, API keys, channels, routing rules, jobs, attempt log and config outbox.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are random 256-bit tokens, so a plain SHA-256 is a sufficient hash.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash    text NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE notification_channels (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    channel_type           text NOT NULL CHECK (channel_type IN
                               ('slack', 'pagerduty', 'teams', 'webhook', 'snmp',
                                'email', 'mqtt')),
    enabled                boolean NOT NULL DEFAULT true,
    config                 jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets_encrypted      text,
    legacy_integration_id  uuid UNIQUE,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX notification_channels_tenant ON notification_channels (tenant_id);

-- The composite foreign key makes a rule's channel belong to the rule's tenant.
CREATE TABLE notification_routing_rules (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id        uuid NOT NULL,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    priority          integer NOT NULL DEFAULT 100,
    site_ids          text[] NOT NULL DEFAULT '{}',
    device_prefixes   text[] NOT NULL DEFAULT '{}',
    alert_types       text[] NOT NULL DEFAULT '{}',
    min_severity      text CHECK (min_severity IN
                          ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFO')),
    deliver_on        text[] NOT NULL DEFAULT '{}'
                          CHECK (deliver_on <@ ARRAY['OPEN', 'ACKNOWLEDGED', 'CLOSED']),
    throttle_minutes  integer NOT NULL DEFAULT 0 CHECK (throttle_minutes >= 0),
    stop_on_match     boolean NOT NULL DEFAULT false,
    enabled           boolean NOT NULL DEFAULT true,
    legacy_route_id   uuid UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, channel_id)
        REFERENCES notification_channels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX notification_routing_rules_tenant
    ON notification_routing_rules (tenant_id, priority);
CREATE INDEX notification_routing_rules_channel
    ON notification_routing_rules (channel_id);

-- A projection of notify.jobs written only by the recorder. No foreign key to
-- channels: a job's history outlives a deleted channel.
CREATE TABLE notification_jobs (
    job_id            uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL,
    channel_id        uuid NOT NULL,
    rule_id           uuid,
    channel_type      text NOT NULL CHECK (channel_type IN
                          ('slack', 'pagerduty', 'teams', 'webhook', 'snmp',
                           'email', 'mqtt')),
    event_id          text NOT NULL,
    alert_id          text NOT NULL,
    event_kind        text NOT NULL,
    severity          text NOT NULL,
    state             text NOT NULL CHECK (state IN
                          ('queued', 'retrying', 'delivered', 'dead', 'suppressed',
                           'cancelled')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- (state_attempt, state_rank) orders events so the row never moves backwards.
    state_attempt     integer NOT NULL DEFAULT 0,
    state_rank        integer NOT NULL DEFAULT 0,
    last_status_code  integer,
    last_reason       text,
    last_error        text,
    event_occurred_at timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    delivered_at      timestamptz,
    next_attempt_at   timestamptz
);
CREATE INDEX notification_jobs_tenant_created
    ON notification_jobs (tenant_id, created_at DESC, job_id DESC);
CREATE INDEX notification_jobs_tenant_state ON notification_jobs (tenant_id, state);
CREATE INDEX notification_jobs_channel ON notification_jobs (channel_id);
CREATE INDEX notification_jobs_alert ON notification_jobs (tenant_id, alert_id);

-- One row per attempt outcome (and per suppression or cancellation).
CREATE TABLE notification_log (
    id            bigserial PRIMARY KEY,
    job_id        uuid NOT NULL REFERENCES notification_jobs (job_id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    state         text NOT NULL,
    status_code   integer,
    reason        text,
    error         text,
    duration_ms   integer,
    occurred_at   timestamptz NOT NULL,
    UNIQUE (job_id, attempt, state)
);

-- Written in the same transaction as every configuration change; the relay
-- publishes rows in id order to notify.config and marks them published.
CREATE TABLE config_outbox (
    id            bigserial PRIMARY KEY,
    message_key   text NOT NULL,
    payload       bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX config_outbox_unpublished ON config_outbox (id) WHERE published_at IS NULL;
"""

DOWNGRADE = """
DROP TABLE config_outbox;
DROP TABLE notification_log;
DROP TABLE notification_jobs;
DROP TABLE notification_routing_rules;
DROP TABLE notification_channels;
DROP TABLE api_keys;
DROP TABLE tenants;
"""


def upgrade() -> None:
    """Create the initial schema."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop the initial schema."""
    op.execute(DOWNGRADE)
