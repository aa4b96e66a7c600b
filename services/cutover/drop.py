"""Dropping the old tables, once nothing in them would be lost unnoticed.

The drop happens only after an apply was recorded and only when every old row
was converted (it is in ``legacy_cutover_items``) or skipped by id. Skipping an
integration skips its routes and jobs too; skipping a job skips its attempts.
Unfinished jobs are never converted, so they must be skipped by id, and so must
attempts that belong to no job (an old schema without the foreign key). The check
and the drop run in one transaction that first locks the four tables, so the
old system cannot add a row between the check and the drop.

History may instead be left behind as a whole (``skip_history``, the command's
``--skip-history``): then no job the old system finished, nor any attempt, has
to be copied or skipped by id, which a large installation could not list. Only
unfinished jobs still need their ids, since they are work not yet done.
Integrations and routes always do.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from services.cutover.errors import CutoverFailed
from services.cutover.history import TERMINAL_STATES, UNFINISHED_STATUSES
from services.cutover.legacy import present_tables
from services.cutover.plan import (
    ATTEMPTS,
    INTEGRATIONS,
    JOBS,
    ROUTES,
    read_target_state,
)

log = logging.getLogger(__name__)

# How many ids a refusal lists per kind of leftover before "and N more".
MAX_IDS_SHOWN = 20
LOCK_TIMEOUT_S = 15


class DropRefused(Exception):
    """Raised when dropping the old tables would lose rows; carries every reason."""

    def __init__(self, reasons: list[str]) -> None:
        """Keep each reason as one line."""
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class Dropped:
    """The tables dropped, each with the number of rows it held."""

    tables: dict[str, int]


def drop_legacy(
    source: psycopg.Connection,
    target: psycopg.Connection,
    skip: Iterable[str] = (),
    *,
    skip_history: bool = False,
) -> Dropped:
    """Drop the old tables in ``source``; :class:`DropRefused` says why not.

    With ``skip_history`` finished jobs and attempts never block the drop.
    """
    state = read_target_state(target)
    if not state.applied:
        raise DropRefused(["no successful `switchboard cutover --apply` is recorded"])
    converted = {(table, str(legacy_id)) for table, legacy_id in state.ledger}
    skipped = {str(value).strip().lower() for value in skip}
    with source.transaction():
        present = present_tables(source)
        if not present:
            raise DropRefused(["the old tables do not exist (dropped already?)"])
        # A still-running old worker holds locks on these tables; fail clearly
        # instead of waiting behind it forever.
        source.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'")
        source.execute(f"LOCK TABLE {', '.join(present)} IN ACCESS EXCLUSIVE MODE")
        reasons = _leftovers(source, present, converted, skipped, skip_history)
        if reasons:
            raise DropRefused(reasons)
        counts = {table: _count(source, table) for table in present}
        # present_tables lists them in dropping order; no CASCADE, so anything
        # else that depends on them stops the drop instead of vanishing.
        source.execute(f"DROP TABLE {', '.join(present)}")
        if source is target:
            _record_drop(target, counts, skip_history)
    if source is not target:
        # Another database: record the drop only once it has committed there.
        try:
            _record_drop(target, counts, skip_history)
        except psycopg.Error as error:
            raise CutoverFailed(
                "the old tables were dropped, but recording the drop in the "
                "Switchboard database failed: "
                f"{error.diag.message_primary or type(error).__name__}"
            ) from error
    log.info("legacy tables dropped", extra={"tables": counts})
    return Dropped(counts)


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _ids(conn: psycopg.Connection, query: str) -> list[tuple[str, ...]]:
    return [
        tuple("" if value is None else str(value).lower() for value in row)
        for row in conn.execute(query).fetchall()
    ]


# Kinds of leftover old rows: what is wrong, and what the operator can do.
LEAVE_HISTORY = "or leave all finished jobs behind with --skip-history"
LEFTOVERS = {
    "integrations": (
        "integrations were neither converted nor skipped",
        "fix them and apply again, or pass --skip ID",
    ),
    "routes": (
        "routes were neither converted nor skipped",
        "fix them and apply again, or pass --skip ID",
    ),
    "uncopied_jobs": (
        "finished jobs were not copied",
        f"apply with --with-history, pass --skip ID, {LEAVE_HISTORY}",
    ),
    "uncopyable_jobs": (
        "finished jobs cannot be copied (a tenant id that is not a uuid or not "
        "their integration's, or an unknown status; the plan says which)",
        f"pass --skip ID, {LEAVE_HISTORY}",
    ),
    "orphaned_jobs": (
        "finished jobs belong to integrations that were not converted",
        f"skip those integrations or the jobs with --skip ID, {LEAVE_HISTORY}",
    ),
    "unfinished_jobs": (
        "unfinished (PENDING or PROCESSING) jobs cannot be copied",
        "let the old system finish them and apply --with-history again, or pass "
        "--skip ID",
    ),
    "orphaned_attempts": (
        "attempts belong to no job and cannot be copied",
        f"pass --skip ID, {LEAVE_HISTORY}",
    ),
}


def _leftovers(
    conn: psycopg.Connection,
    present: tuple[str, ...],
    converted: set[tuple[str, str]],
    skipped: set[str],
    skip_history: bool = False,
) -> list[str]:
    """One reason per kind of old row that is neither converted nor skipped."""
    found: dict[str, list[str]] = defaultdict(list)
    # Skipping an integration covers its routes and jobs.
    covered = set(skipped)
    tenants: dict[str, str] = {}
    if INTEGRATIONS in present:
        for legacy_id, tenant_id in _ids(
            conn, "SELECT id, tenant_id::text FROM integrations"
        ):
            tenants[legacy_id] = tenant_id
            if legacy_id in skipped:
                covered.add(f"integration:{legacy_id}")
            elif (INTEGRATIONS, legacy_id) not in converted:
                found["integrations"].append(legacy_id)

    def left(table: str, legacy_id: str, integration_id: str) -> bool:
        return (table, legacy_id) not in converted and not (
            {legacy_id, f"integration:{integration_id}"} & covered
        )

    if ROUTES in present:
        for route_id, integration_id in _ids(
            conn, "SELECT id, integration_id FROM integration_routes"
        ):
            if left(ROUTES, route_id, integration_id):
                found["routes"].append(route_id)
    if JOBS in present:
        for job_id, integration_id, status, tenant_id in _ids(
            conn,
            "SELECT id, integration_id, status, tenant_id::text FROM delivery_jobs",
        ):
            job = _OldJob(job_id, integration_id, status, tenant_id)
            if skip_history and not _unfinished(status):
                continue
            if left(JOBS, job_id, integration_id):
                found[_job_leftover(job, converted, tenants)].append(job_id)
    if ATTEMPTS in present and not skip_history:
        query = "SELECT id FROM delivery_attempts a"
        if JOBS in present:
            query += (
                " WHERE NOT EXISTS (SELECT FROM delivery_jobs j WHERE j.id = a.job_id)"
            )
        for (attempt_id,) in _ids(conn, query):
            if attempt_id not in skipped:
                found["orphaned_attempts"].append(attempt_id)
    return [
        f"{len(found[kind])} {what} ({remedy}): {_listed(found[kind])}"
        for kind, (what, remedy) in LEFTOVERS.items()
        if found[kind]
    ]


@dataclass(frozen=True)
class _OldJob:
    """The columns of an old job that decide what keeps it from the drop."""

    id: str
    integration_id: str
    status: str
    tenant_id: str


def _unfinished(status: str) -> bool:
    return status.strip().upper() in UNFINISHED_STATUSES


def _job_leftover(
    job: _OldJob, converted: set[tuple[str, str]], tenants: dict[str, str]
) -> str:
    """Which kind of leftover an old job is, so the refusal gives its remedy."""
    if _unfinished(job.status):
        return "unfinished_jobs"
    if (INTEGRATIONS, job.integration_id) not in converted:
        return "orphaned_jobs"
    # The plan refuses these, so applying --with-history again cannot copy them.
    if (
        job.status.strip().upper() not in TERMINAL_STATES
        or not _is_uuid(job.tenant_id)
        or _uuid_text(job.tenant_id) != _uuid_text(tenants.get(job.integration_id))
    ):
        return "uncopyable_jobs"
    return "uncopied_jobs"


def _is_uuid(text: str) -> bool:
    return _uuid_text(text) is not None


def _uuid_text(text: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(text).strip())) if text is not None else None
    except ValueError:
        return None


def _listed(ids: list[str]) -> str:
    shown = ", ".join(sorted(ids)[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _record_drop(
    conn: psycopg.Connection, counts: dict[str, int], skip_history: bool
) -> None:
    conn.execute(
        "INSERT INTO legacy_cutover_runs (action, summary) VALUES ('drop', %s)",
        (Jsonb({"tables": counts, "skip_history": skip_history}),),
    )
