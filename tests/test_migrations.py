"""Migrations on an empty database, re-runs, and the constraints the schema enforces."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from switchboard import db

TABLES = {
    "tenants",
    "api_keys",
    "notification_channels",
    "notification_routing_rules",
    "notification_jobs",
    "notification_log",
    "config_outbox",
}


def table_names(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_migrating_an_empty_database_creates_every_table(scratch_database: str) -> None:
    assert db.current_revision(scratch_database) is None

    db.migrate(scratch_database)

    assert TABLES <= table_names(scratch_database)
    assert db.current_revision(scratch_database) is not None


def test_migrating_twice_changes_nothing(scratch_database: str) -> None:
    db.migrate(scratch_database)
    revision = db.current_revision(scratch_database)

    db.migrate(scratch_database)

    assert db.current_revision(scratch_database) == revision
    assert TABLES <= table_names(scratch_database)


def insert_tenant(conn: psycopg.Connection) -> str:
    tenant_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant_id, f"t-{tenant_id}")
    )
    return tenant_id


def insert_channel(
    conn: psycopg.Connection, tenant_id: str, kind: str = "webhook"
) -> str:
    channel_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO notification_channels (id, tenant_id, name, channel_type)"
        " VALUES (%s, %s, 'c', %s)",
        (channel_id, tenant_id, kind),
    )
    return channel_id


def insert_rule(
    conn: psycopg.Connection, tenant_id: str, channel_id: str, **extra: object
) -> None:
    columns = ["id", "tenant_id", "channel_id", "name", *extra]
    values = [str(uuid.uuid4()), tenant_id, channel_id, "r", *extra.values()]
    placeholders = ", ".join(["%s"] * len(values))
    conn.execute(
        f"INSERT INTO notification_routing_rules ({', '.join(columns)})"
        f" VALUES ({placeholders})",
        values,
    )


def test_a_rule_cannot_point_at_another_tenants_channel(
    conn: psycopg.Connection,
) -> None:
    tenant_a, tenant_b = insert_tenant(conn), insert_tenant(conn)
    channel_of_b = insert_channel(conn, tenant_b)

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        insert_rule(conn, tenant_a, channel_of_b)


def test_a_rule_of_the_channels_tenant_is_accepted(conn: psycopg.Connection) -> None:
    tenant = insert_tenant(conn)
    channel = insert_channel(conn, tenant)

    insert_rule(
        conn, tenant, channel, deliver_on=["OPEN", "CLOSED"], min_severity="HIGH"
    )

    count = conn.execute(
        "SELECT count(*) FROM notification_routing_rules WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    assert count == (1,)


def test_channel_type_must_be_one_of_the_seven(conn: psycopg.Connection) -> None:
    tenant = insert_tenant(conn)

    with pytest.raises(psycopg.errors.CheckViolation):
        insert_channel(conn, tenant, kind="sms")


@pytest.mark.parametrize(
    "extra",
    [
        {"deliver_on": ["OPEN", "RESOLVED"]},
        {"min_severity": "URGENT"},
        {"throttle_minutes": -1},
    ],
)
def test_rule_fields_are_checked(conn: psycopg.Connection, extra: dict) -> None:
    tenant = insert_tenant(conn)
    channel = insert_channel(conn, tenant)

    with pytest.raises(psycopg.errors.CheckViolation):
        insert_rule(conn, tenant, channel, **extra)


def test_one_row_per_job_id(conn: psycopg.Connection) -> None:
    job_id = str(uuid.uuid4())
    row = (
        job_id,
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        "webhook",
        "e",
        "a",
        "OPEN",
        "HIGH",
        "queued",
    )
    sql = (
        "INSERT INTO notification_jobs (job_id, tenant_id, channel_id, channel_type,"
        " event_id, alert_id, event_kind, severity, state, event_occurred_at,"
        " created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now(), now())"
    )
    conn.execute(sql, row)

    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(sql, row)
