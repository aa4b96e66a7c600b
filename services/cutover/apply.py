"""Writing a plan in one transaction: tenants, channels, rules and, on request, history.

The plan is computed again inside the transaction, after taking an advisory
lock, so two cutovers started together cannot both create the same channel,
and what is written is exactly what the ledger did not hold yet. Channels and
rules are stored through :mod:`services.cutover.create` (the API's validation,
encryption and outbox rows); every converted old row is remembered in
``legacy_cutover_items``. Any failure rolls the whole apply back.

History is never written to the job tables: the job events of the copied jobs
(:mod:`services.cutover.history`) go to ``job_outbox`` in the same transaction,
the outbox relay publishes them to ``notify.jobs`` in order, and the recorder
writes ``notification_jobs`` and ``notification_log`` from them as from any job
event. The history shows in the API once a relay and a recorder have run, and a
replay of ``notify.jobs`` rebuilds it with everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from services.api.outbox import record_job_events
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
    # Job events queued for notify.jobs: a queued event and the attempts per job.
    job_events: int = 0

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
    skip_history: bool = False,
    codec: Codec | None = None,
) -> tuple[Plan, Applied]:
    """Plan against the current database and write the plan, all in one transaction."""
    if with_history and skip_history:
        raise ValueError(
            "--with-history copies the old jobs and --skip-history leaves them "
            "behind; give one of them"
        )
    box = SecretBox.from_settings(settings)
    codec = codec or default_codec()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        state = read_target_state(conn)
        plan = build_plan(
            snapshot,
            state,
            skip,
            allow_private_targets=settings.allow_private_targets,
            skip_history=skip_history,
        )
        applied = Applied(
            tenants=_tenants(conn, plan),
            channels=_channels(conn, plan, box, codec),
            rules=_rules(conn, plan, codec),
            **(_history(conn, plan.new_jobs, codec) if with_history else {}),
        )
        # A re-run that finds everything converted changes nothing at all.
        if not (applied.nothing and state.applied):
            _record_run(conn, applied, with_history, skip_history)
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


def _history(
    conn: psycopg.Connection, jobs: list[JobItem], codec: Codec
) -> dict[str, int]:
    """Queue the copied jobs' events for notify.jobs and remember the jobs."""
    copies = [item.copy for item in jobs if item.copy is not None]
    # One job's events stay together and in order; they share the job id as
    # key, so they stay in order on notify.jobs too.
    events = record_job_events(
        conn, codec, (event for copy in copies for event in copy.events)
    )
    _remember_many(conn, JOBS, [(item.legacy_id, item.legacy_id) for item in jobs])
    return {
        "jobs": len(copies),
        "attempts": sum(copy.attempts for copy in copies),
        "job_events": events,
    }


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


def _record_run(
    conn: psycopg.Connection, applied: Applied, with_history: bool, skip_history: bool
) -> None:
    summary = {
        **asdict(applied),
        "with_history": with_history,
        "skip_history": skip_history,
    }
    conn.execute(
        "INSERT INTO legacy_cutover_runs (action, summary) VALUES ('apply', %s)",
        (Jsonb(summary),),
    )
