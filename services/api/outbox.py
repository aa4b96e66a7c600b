"""Writing Kafka messages to an outbox table in the transaction that implies them.

Every write of the API stores the changed row and, in the same PostgreSQL
transaction, one ``config_outbox`` row per ``notify.config`` message it
implies: the new state of the channel or rule (a ConfigEvent whose
``outbox_id`` is the row's id) or a tombstone (NULL payload) for a deletion.
The relay publishes them in id order, so consumers converge on exactly what the
database holds.

Job events that belong to a database change (the legacy cutover's copied
history) go to ``job_outbox`` the same way and reach ``notify.jobs`` through the
relay, so that the recorder alone writes the job tables.

Callers lock the changed row before writing here, which keeps the outbox ids of
one key in commit order. A change whose message would be too large for Kafka is
refused here, inside the transaction, so it is never stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import Gauge
from psycopg.rows import tuple_row

from services.api.errors import ApiError
from switchboard.codec import Codec
from switchboard.config_cache import (
    ChannelRecord,
    RuleRecord,
    channel_key,
    encode_channel_event,
    encode_rule_event,
    rule_key,
)

# The relay LISTENs here so a committed change is published at once.
NOTIFY_CHANNEL = "switchboard_config_outbox"
CONFIG_OUTBOX = "config_outbox"
JOB_OUTBOX = "job_outbox"
# Kafka refuses records over its message.max.bytes (1 MB by default), and one
# refused change would never reach the pipeline; a channel or rule within the
# field limits of its model encodes to a few kilobytes.
MAX_EVENT_BYTES = 256 * 1024

BACKLOG_ROWS = Gauge(
    "switchboard_outbox_backlog_rows", "Outbox rows not yet published to Kafka."
)
JOB_BACKLOG_ROWS = Gauge(
    "switchboard_job_outbox_backlog_rows",
    "Job events in the outbox not yet published to notify.jobs.",
)
BACKLOG_AGE = Gauge(
    "switchboard_outbox_backlog_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none is waiting).",
)


def channel_record(row: dict[str, Any]) -> ChannelRecord:
    """The notify.config form of a notification_channels row."""
    return ChannelRecord(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        name=row["name"],
        channel_type=row["channel_type"],
        enabled=row["enabled"],
        config_json=json.dumps(row["config"], sort_keys=True),
        secrets_encrypted=row["secrets_encrypted"],
    )


def rule_record(row: dict[str, Any]) -> RuleRecord:
    """The notify.config form of a notification_routing_rules row."""
    return RuleRecord(
        id=str(row["id"]),
        tenant_id=str(row["tenant_id"]),
        channel_id=str(row["channel_id"]),
        name=row["name"],
        priority=row["priority"],
        site_ids=tuple(row["site_ids"]),
        device_prefixes=tuple(row["device_prefixes"]),
        alert_types=tuple(row["alert_types"]),
        min_severity=row["min_severity"],
        deliver_on=tuple(row["deliver_on"]),
        throttle_minutes=row["throttle_minutes"],
        stop_on_match=row["stop_on_match"],
        enabled=row["enabled"],
    )


def _next_id(conn: psycopg.Connection) -> int:
    with conn.cursor(row_factory=tuple_row) as cursor:
        row = cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('config_outbox', 'id'))"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _insert(
    conn: psycopg.Connection, outbox_id: int, key: str, payload: bytes | None
) -> None:
    if payload is not None and len(payload) > MAX_EVENT_BYTES:
        raise ApiError(
            422,
            [
                (
                    "body",
                    f"the change encodes to {len(payload)} bytes; at most "
                    f"{MAX_EVENT_BYTES} fit the pipeline",
                )
            ],
        )
    conn.execute(
        "INSERT INTO config_outbox (id, message_key, payload) VALUES (%s, %s, %s)",
        (outbox_id, key, payload),
    )
    conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))


def record_channel(conn: psycopg.Connection, codec: Codec, row: dict[str, Any]) -> int:
    """Queue the current state of a channel for notify.config; the outbox id."""
    outbox_id = _next_id(conn)
    payload = encode_channel_event(codec, channel_record(row), outbox_id)
    _insert(conn, outbox_id, channel_key(str(row["id"])), payload)
    return outbox_id


def record_rule(conn: psycopg.Connection, codec: Codec, row: dict[str, Any]) -> int:
    """Queue the current state of a rule for notify.config; the outbox id."""
    outbox_id = _next_id(conn)
    payload = encode_rule_event(codec, rule_record(row), outbox_id)
    _insert(conn, outbox_id, rule_key(str(row["id"])), payload)
    return outbox_id


def record_channel_deleted(conn: psycopg.Connection, channel_id: str) -> int:
    """Queue the tombstone of a deleted channel."""
    outbox_id = _next_id(conn)
    _insert(conn, outbox_id, channel_key(channel_id), None)
    return outbox_id


def record_rule_deleted(conn: psycopg.Connection, rule_id: str) -> int:
    """Queue the tombstone of a deleted rule."""
    outbox_id = _next_id(conn)
    _insert(conn, outbox_id, rule_key(rule_id), None)
    return outbox_id


def record_job_events(
    conn: psycopg.Connection, codec: Codec, events: Iterable[dict[str, Any]]
) -> int:
    """Queue JobEvents for notify.jobs, keyed by job id, in the given order.

    Written in the caller's transaction, in one pipelined batch; the ids, and so
    the order the relay publishes them in, follow ``events``. Returns how many.
    """
    rows = []
    for event in events:
        payload = codec.encode("JobEvent", event)
        if len(payload) > MAX_EVENT_BYTES:
            # Callers bound the texts they copy; this is the last guard.
            raise ValueError(
                f"the job event of job {event['job_id']} encodes to {len(payload)} "
                f"bytes; at most {MAX_EVENT_BYTES} fit the pipeline"
            )
        rows.append((str(event["job_id"]), payload))
    if not rows:
        return 0
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO job_outbox (message_key, payload) VALUES (%s, %s)", rows
        )
    conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
    return len(rows)


@dataclass(frozen=True)
class Backlog:
    """Outbox rows waiting for the relay: how many, and the oldest one's age."""

    rows: int
    oldest_age_s: float


def backlog(conn: psycopg.Connection) -> Backlog:
    """The current backlog, also exported as gauges."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        row = cursor.execute(
            "SELECT count(*), COALESCE(extract(epoch FROM now() - min(created_at)), 0)"
            " FROM config_outbox WHERE published_at IS NULL AND failed_at IS NULL"
        ).fetchone()
    assert row is not None
    current = Backlog(int(row[0]), float(row[1]))
    BACKLOG_ROWS.set(current.rows)
    BACKLOG_AGE.set(current.oldest_age_s)
    return current


def job_backlog(conn: psycopg.Connection) -> int:
    """Job events waiting for the relay, also exported as a gauge.

    Kept apart from :func:`backlog`, which readiness reads: a large copied
    history takes a while to publish and must not make the API look unready.
    """
    with conn.cursor(row_factory=tuple_row) as cursor:
        row = cursor.execute(
            "SELECT count(*) FROM job_outbox"
            " WHERE published_at IS NULL AND failed_at IS NULL"
        ).fetchone()
    rows = int(row[0]) if row else 0
    JOB_BACKLOG_ROWS.set(rows)
    return rows
