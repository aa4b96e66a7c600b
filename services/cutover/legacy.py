"""Reading the old integrations system's four tables, as one consistent snapshot.

The old schema is taken as it was deployed: ``tenant_id`` is read as text
(older installations did not all store uuids), arrays may be NULL (meaning "no
filter") and ``config`` is whatever JSON the old system stored. Nothing is
interpreted here; :mod:`services.cutover.convert` and friends decide what each
row becomes.

A table of one of the four names that lacks a column the cutover reads (or
whose ids are not uuids) is not the old system's: the read stops with a
:class:`CutoverFailed` naming the table and what it lacks, before any row is
read, rather than with the database's bare "column does not exist".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from services.cutover.errors import CutoverFailed

# In the order they are dropped: attempts reference jobs, routes integrations.
LEGACY_TABLES = (
    "delivery_attempts",
    "delivery_jobs",
    "integration_routes",
    "integrations",
)

# The columns the cutover reads from each old table.
COLUMNS = {
    "integrations": (
        "id tenant_id name type enabled config created_at",
        ("id",),
    ),
    "integration_routes": (
        "id tenant_id integration_id name enabled site_ids device_prefixes"
        " deliver_on alert_types min_severity priority created_at",
        ("id", "integration_id"),
    ),
    "delivery_jobs": (
        "id tenant_id integration_id alert_id event_kind status attempts last_error"
        " payload created_at updated_at",
        ("id", "integration_id"),
    ),
    "delivery_attempts": (
        "id job_id attempt_no ok http_status error started_at finished_at",
        ("job_id",),
    ),
}


@dataclass(frozen=True)
class LegacyIntegration:
    """One row of ``integrations``."""

    id: uuid.UUID
    tenant_id: str
    name: str | None
    type: str
    enabled: bool
    config: Any = field(repr=False)
    created_at: datetime | None = None


@dataclass(frozen=True)
class LegacyRoute:
    """One row of ``integration_routes``."""

    id: uuid.UUID
    tenant_id: str
    integration_id: uuid.UUID | None
    name: str | None
    enabled: bool
    site_ids: list[str] | None
    device_prefixes: list[str] | None
    deliver_on: list[str] | None
    alert_types: list[str] | None
    min_severity: str | None
    priority: int | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class LegacyAttempt:
    """One row of ``delivery_attempts``."""

    id: Any
    job_id: uuid.UUID
    attempt_no: int
    ok: bool
    http_status: int | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class LegacyJob:
    """One row of ``delivery_jobs`` with its attempts, oldest first."""

    id: uuid.UUID
    tenant_id: str
    integration_id: uuid.UUID | None
    alert_id: str | None
    event_kind: str | None
    status: str
    attempts: int
    last_error: str | None
    payload: Any = field(repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    attempt_rows: tuple[LegacyAttempt, ...] = ()


@dataclass(frozen=True)
class LegacySnapshot:
    """Everything the old tables hold, read in one transaction."""

    present: tuple[str, ...]
    integrations: tuple[LegacyIntegration, ...] = ()
    routes: tuple[LegacyRoute, ...] = ()
    jobs: tuple[LegacyJob, ...] = ()
    # Attempts whose job is not in delivery_jobs: never copied, skipped by id.
    orphan_attempt_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether there is nothing to convert (no tables, or no rows)."""
        return not (self.integrations or self.routes or self.jobs)


def present_tables(conn: psycopg.Connection) -> tuple[str, ...]:
    """Which of the four old tables exist in the connection's search path."""
    found = []
    for table in LEGACY_TABLES:
        row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if row and row[0] is not None:
            found.append(table)
    return tuple(found)


def check_columns(conn: psycopg.Connection, table: str) -> None:
    """Raise :class:`CutoverFailed` unless ``table`` has the old schema's columns."""
    names, uuid_columns = COLUMNS[table]
    found = dict(
        conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (table,),
        ).fetchall()
    )
    missing = [name for name in names.split() if name not in found]
    not_uuid = [
        f"{name} is {found[name]}"
        for name in uuid_columns
        if name in found and found[name] != "uuid"
    ]
    if missing or not_uuid:
        lacks = (f"no column {', '.join(missing)}",) if missing else ()
        problems = "; ".join((*lacks, *(f"{p}, not uuid" for p in not_uuid)))
        raise CutoverFailed(
            f"table {table} does not look like the old integrations system's "
            f"({problems}); is this the old system's database? Nothing was written."
        )


def read_snapshot(conn: psycopg.Connection) -> LegacySnapshot:
    """Read all four old tables in one read-only, repeatable-read transaction.

    ``conn`` must be in autocommit mode: the snapshot is its own transaction.
    """
    if not conn.autocommit:
        raise ValueError("read_snapshot needs an autocommit connection")
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        present = present_tables(conn)
        for table in present:
            check_columns(conn, table)
        integrations = _integrations(conn) if "integrations" in present else []
        routes = _routes(conn) if "integration_routes" in present else []
        attempts = _attempts(conn) if "delivery_attempts" in present else []
        jobs = _jobs(conn) if "delivery_jobs" in present else []
    by_job: dict[uuid.UUID, list[LegacyAttempt]] = {}
    for attempt in attempts:
        by_job.setdefault(attempt.job_id, []).append(attempt)
    with_attempts = tuple(_with_attempts(job, by_job.pop(job.id, [])) for job in jobs)
    return LegacySnapshot(
        present=present,
        integrations=tuple(integrations),
        routes=tuple(routes),
        jobs=with_attempts,
        orphan_attempt_ids=tuple(
            str(attempt.id) for rows in by_job.values() for attempt in rows
        ),
    )


def _with_attempts(job: LegacyJob, attempts: list[LegacyAttempt]) -> LegacyJob:
    ordered = tuple(sorted(attempts, key=lambda attempt: attempt.attempt_no))
    return LegacyJob(**{**job.__dict__, "attempt_rows": ordered})


def _rows(conn: psycopg.Connection, query: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query).fetchall()


def _integrations(conn: psycopg.Connection) -> list[LegacyIntegration]:
    rows = _rows(
        conn,
        "SELECT id, tenant_id::text AS tenant_id, name, type, enabled, config,"
        " created_at FROM integrations ORDER BY tenant_id, created_at, id",
    )
    return [
        LegacyIntegration(**{**row, "enabled": bool(row["enabled"])}) for row in rows
    ]


def _routes(conn: psycopg.Connection) -> list[LegacyRoute]:
    rows = _rows(
        conn,
        "SELECT id, tenant_id::text AS tenant_id, integration_id, name, enabled,"
        " site_ids, device_prefixes, deliver_on, alert_types, min_severity,"
        " priority, created_at FROM integration_routes"
        " ORDER BY tenant_id, priority, created_at, id",
    )
    return [LegacyRoute(**{**row, "enabled": bool(row["enabled"])}) for row in rows]


def _jobs(conn: psycopg.Connection) -> list[LegacyJob]:
    rows = _rows(
        conn,
        "SELECT id, tenant_id::text AS tenant_id, integration_id, alert_id::text AS"
        " alert_id, event_kind, status, attempts, last_error, payload, created_at,"
        " updated_at FROM delivery_jobs ORDER BY created_at, id",
    )
    return [LegacyJob(**{**row, "attempts": row["attempts"] or 0}) for row in rows]


def _attempts(conn: psycopg.Connection) -> list[LegacyAttempt]:
    rows = _rows(
        conn,
        "SELECT id, job_id, attempt_no, ok, http_status, error, started_at,"
        " finished_at FROM delivery_attempts ORDER BY job_id, attempt_no, id",
    )
    return [LegacyAttempt(**{**row, "ok": bool(row["ok"])}) for row in rows]
