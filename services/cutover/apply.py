"""Writing a plan in one transaction: tenants, channels, rules and, on request, history.

The plan is computed again inside the transaction, after taking an advisory
lock, so two cutovers started together cannot both create the same channel,
and what is written is exactly what the ledger did not hold yet. Channels and
rules are stored through :mod:`services.cutover.create` (the API's validation,
encryption and outbox rows); every converted old row is remembered in
``legacy_cutover_items``. Any failure rolls the whole apply back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from services.cutover.create import insert_channel, insert_rule, validate_rule
from services.cutover.legacy import LegacySnapshot
from services.cutover.plan import (
    INTEGRATIONS,
    JOBS,
    ROUTES,
    JobItem,
    Plan,
    build_plan,
    read_target_state,
    tenant_name,
)
from switchboard.codec import Codec, default_codec
from switchboard.secrets import SecretBox
from switchboard.settings import Settings

log = logging.getLogger(__name__)

# Serialises cutover runs on one database ("SBCT" as an integer).
ADVISORY_LOCK_KEY = 0x53424354


@dataclass(frozen=True)
class Applied:
    """What one apply wrote."""

    tenants: int = 0
    channels: int = 0
    rules: int = 0
    jobs: int = 0
    attempts: int = 0

    @property
    def nothing(self) -> bool:
        """Whether the apply found everything converted already."""
        return not any(asdict(self).values())


def apply_plan(
    conn: psycopg.Connection,
    snapshot: LegacySnapshot,
    settings: Settings,
    skip: Iterable[str] = (),
    *,
    with_history: bool = False,
    codec: Codec | None = None,
) -> tuple[Plan, Applied]:
    """Plan against the current database and write the plan, all in one transaction."""
    box = SecretBox.from_settings(settings)
    codec = codec or default_codec()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        state = read_target_state(conn)
        plan = build_plan(
            snapshot, state, skip, allow_private_targets=settings.allow_private_targets
        )
        applied = Applied(
            tenants=_tenants(conn, plan),
            channels=_channels(conn, plan, box, codec),
            rules=_rules(conn, plan, codec),
            **(_history(conn, plan.new_jobs) if with_history else {}),
        )
        # A re-run that finds everything converted changes nothing at all.
        if not (applied.nothing and state.applied):
            _record_run(conn, applied, with_history)
    log.info("legacy cutover applied", extra=asdict(applied))
    return plan, applied


def _tenants(conn: psycopg.Connection, plan: Plan) -> int:
    for tenant_id in plan.tenants_to_create:
        conn.execute(
            "INSERT INTO tenants (id, name) VALUES (%s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            (tenant_id, tenant_name(tenant_id)),
        )
    return len(plan.tenants_to_create)


def _channels(
    conn: psycopg.Connection, plan: Plan, box: SecretBox, codec: Codec
) -> int:
    for item in plan.new_channels:
        assert item.channel is not None
        insert_channel(
            conn,
            box,
            codec,
            item.tenant_id,
            item.channel,
            channel_id=item.channel_id,
            legacy_integration_id=item.legacy_id,
        )
        _remember(conn, INTEGRATIONS, item.legacy_id, item.channel_id)
    return len(plan.new_channels)


def _rules(conn: psycopg.Connection, plan: Plan, codec: Codec) -> int:
    for item in plan.new_rules:
        insert_rule(
            conn,
            codec,
            item.tenant_id,
            validate_rule(item.fields),
            rule_id=item.rule_id,
            legacy_route_id=item.legacy_id,
        )
        _remember(conn, ROUTES, item.legacy_id, item.rule_id)
    return len(plan.new_rules)


def _history(conn: psycopg.Connection, jobs: list[JobItem]) -> dict[str, int]:
    job_rows = [item.copy.job for item in jobs if item.copy is not None]
    log_rows = [
        {"job_id": item.legacy_id, **row}
        for item in jobs
        if item.copy is not None
        for row in item.copy.log
    ]
    _insert_many(conn, "notification_jobs", job_rows, "(job_id)")
    _insert_many(conn, "notification_log", log_rows, "(job_id, attempt, state)")
    _remember_many(conn, JOBS, [(item.legacy_id, item.legacy_id) for item in jobs])
    return {"jobs": len(job_rows), "attempts": len(log_rows)}


def _insert_many(
    conn: psycopg.Connection, table: str, rows: list[dict[str, Any]], conflict: str
) -> None:
    """Insert rows that all have the same keys, in one pipelined batch."""
    if not rows:
        return
    columns = ", ".join(rows[0])
    placeholders = ", ".join(["%s"] * len(rows[0]))
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
            f" ON CONFLICT {conflict} DO NOTHING",
            [tuple(row.values()) for row in rows],
        )


def _remember_many(
    conn: psycopg.Connection, table: str, pairs: list[tuple[Any, Any]]
) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO legacy_cutover_items (legacy_table, legacy_id, new_id)"
            " VALUES (%s, %s, %s)",
            [(table, legacy_id, new_id) for legacy_id, new_id in pairs],
        )


def _remember(
    conn: psycopg.Connection, table: str, legacy_id: Any, new_id: Any
) -> None:
    conn.execute(
        "INSERT INTO legacy_cutover_items (legacy_table, legacy_id, new_id)"
        " VALUES (%s, %s, %s)",
        (table, legacy_id, new_id),
    )


def _record_run(conn: psycopg.Connection, applied: Applied, with_history: bool) -> None:
    conn.execute(
        "INSERT INTO legacy_cutover_runs (action, summary) VALUES ('apply', %s)",
        (Jsonb({**asdict(applied), "with_history": with_history}),),
    )
