"""Leaving the old history behind on purpose, and the drop's remedy for each old job."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from cutover_fixture import Legacy
from cutover_reference import SKIPPED, rows

from services.cutover.errors import CutoverFailed
from services.cutover.legacy import LEGACY_TABLES, present_tables
from services.cutover.report import plan_json, plan_text
from services.cutover.run import run_cutover
from switchboard.settings import Settings

# Skipping these still leaves the unfinished jobs to skip by id.
WITHOUT_UNFINISHED = [role for role in SKIPPED if not role.startswith("j_")]


def test_skip_history_leaves_finished_jobs_behind_and_lets_the_drop_through(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    # An attempt of no job is history too: it must not block either.
    with psycopg.connect(legacy.url) as conn:
        conn.execute(
            "ALTER TABLE delivery_attempts"
            " DROP CONSTRAINT delivery_attempts_job_id_fkey"
        )
        conn.execute(
            "INSERT INTO delivery_attempts (job_id, attempt_no, ok, started_at)"
            " VALUES (gen_random_uuid(), 1, false, now())"
        )
    planned = run_cutover(cutover_settings, skip_history=True).plan
    text = "\n".join(plan_text(planned, with_history=False))
    report = plan_json(planned)
    assert report["history_left_behind"]["jobs"] == 4
    assert report["history_left_behind"]["attempts"] == 5 + 1
    assert "History left behind (--skip-history): 4 finished jobs" in text
    assert not planned.jobs and not any(
        u.table == "delivery_jobs" for u in planned.unconvertible
    )
    assert not any("belong to no job" in w for w in planned.warnings)

    run_cutover(cutover_settings, apply=True)
    skip = [legacy.id(role) for role in SKIPPED]
    refused = run_cutover(cutover_settings, drop=True, skip=skip)
    assert refused.refused is not None
    [uncopied] = [r for r in refused.refused if "finished jobs were not copied" in r]
    assert "--skip-history" in uncopied and legacy.id("j_delivered") in uncopied
    unfinished = run_cutover(
        cutover_settings,
        drop=True,
        skip_history=True,
        skip=[legacy.id(role) for role in WITHOUT_UNFINISHED],
    )
    assert unfinished.refused is not None
    assert [r for r in unfinished.refused if legacy.id("j_pending") in r]
    with psycopg.connect(legacy.url) as conn:
        assert present_tables(conn) == LEGACY_TABLES

    dropped = run_cutover(cutover_settings, drop=True, skip_history=True, skip=skip)

    assert dropped.refused is None and dropped.dropped is not None
    assert dropped.dropped.tables["delivery_jobs"] == 6
    [run] = rows(
        legacy.url, "SELECT summary FROM legacy_cutover_runs WHERE action = 'drop'"
    )
    assert run["summary"]["skip_history"] is True
    assert rows(legacy.url, "SELECT count(*) AS n FROM job_outbox") == [{"n": 0}]


def test_with_history_and_skip_history_contradict(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    with pytest.raises(CutoverFailed, match="give one of them"):
        run_cutover(cutover_settings, apply=True, with_history=True, skip_history=True)


def test_a_finished_job_that_cannot_be_copied_gets_the_remedy_that_works(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    # Older installations stored tenant ids as text; one job names no uuid, and
    # another a tenant that is not its integration's.
    foreign, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(legacy.url) as conn:
        conn.execute("ALTER TABLE delivery_jobs ALTER COLUMN tenant_id TYPE text")
        for job_id, tenant in ((foreign, "acme"), (stranger, str(uuid.uuid4()))):
            conn.execute(
                "INSERT INTO delivery_jobs (id, tenant_id, integration_id, alert_id,"
                " event_kind, status, attempts) VALUES (%s, %s, %s, 'a', 'open',"
                " 'COMPLETED', 1)",
                (job_id, tenant, legacy.id("webhook")),
            )

    applied = run_cutover(cutover_settings, apply=True, with_history=True)
    refused = {u.legacy_id: dict(u.problems) for u in applied.plan.unconvertible}
    assert "not a uuid" in refused[foreign]["tenant_id"]
    assert "different tenants" in refused[stranger]["tenant_id"]
    result = run_cutover(
        cutover_settings, drop=True, skip=[legacy.id(r) for r in SKIPPED]
    )

    assert result.refused is not None
    [reason] = [r for r in result.refused if foreign in r]
    assert stranger in reason
    assert reason.startswith("2 finished jobs cannot be copied")
    assert "--with-history" not in reason
    assert "pass --skip ID" in reason and "--skip-history" in reason
