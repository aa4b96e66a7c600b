"""``switchboard cutover`` as an operator runs it, and with the old tables elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cutover_fixture import SECRETS, Legacy, create_legacy

from services.cutover.errors import CutoverFailed
from services.cutover.legacy import LEGACY_TABLES, present_tables
from services.cutover.run import run_cutover
from switchboard import db
from switchboard.settings import Settings

SWITCHBOARD = str(Path(sys.executable).with_name("switchboard"))
# Broken integrations (their routes and jobs go with them), the route to a
# deleted integration, the route with an unknown severity, unfinished jobs.
SKIPPED = (
    "sms",
    "bad_url",
    "no_from",
    "private",
    "r_deleted",
    "r_bad_severity",
    "j_pending",
    "j_processing",
)


def cutover(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_ALLOW_PRIVATE_TARGETS": "false",
        "SWITCHBOARD_LOG_LEVEL": "DEBUG",
    }
    return subprocess.run(
        [SWITCHBOARD, "cutover", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_no_secret(process: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in process.stdout
        assert secret not in process.stderr


def test_plan_apply_and_drop_from_the_command_line(legacy: Legacy) -> None:
    plan = cutover(legacy.url, "--json")
    assert plan.returncode == 0, plan.stderr
    report = json.loads(plan.stdout)
    assert report["applied"] is None and report["drop"] is None
    assert report["plan"]["summary"]["channels_to_create"] == 7
    assert report["plan"]["tenants_to_create"][0]["id"] == legacy.new_tenant
    assert_no_secret(plan)

    applied = cutover(legacy.url, "--apply", "--with-history")
    assert applied.returncode == 0, applied.stderr
    assert (
        "Applied in one transaction: 1 tenants, 7 channels, 9 rules, 3 jobs, 6 attempts"
    ) in applied.stdout
    assert_no_secret(applied)

    refused = cutover(legacy.url, "--apply", "--drop-legacy")
    assert refused.returncode == 1
    assert "Applied in one transaction: nothing new" in refused.stdout
    assert "Not dropping the old tables:" in refused.stdout
    assert legacy.id("j_pending") in refused.stdout

    skip = [legacy.id(role) for role in SKIPPED]
    dropped = cutover(
        legacy.url,
        "--drop-legacy",
        "--skip",
        ",".join(skip[:4]),
        *[arg for value in skip[4:] for arg in ("--skip", value)],
    )
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert (
        "Dropped in one transaction: delivery_attempts (5 rows), delivery_jobs "
        "(6 rows), integration_routes (13 rows), integrations (11 rows)"
    ) in dropped.stdout
    assert_no_secret(dropped)


@pytest.fixture
def old_database(settings: Settings, unique: str) -> Iterator[str]:
    """A second scratch database: the old system's own, holding only its tables."""
    name = f"scratch_old_{unique}"
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield settings.database_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_old_tables_in_another_database(
    scratch_database: str, old_database: str, settings: Settings
) -> None:
    db.migrate(scratch_database)
    legacy = create_legacy(old_database, switchboard_url=scratch_database)
    target = settings.model_copy(
        update={"database_url": scratch_database, "allow_private_targets": False}
    )
    skip = [legacy.id(role) for role in SKIPPED]

    applied = run_cutover(
        target,
        source_url=old_database,
        apply=True,
        with_history=True,
        drop=True,
        skip=skip,
    )

    assert applied.applied is not None and applied.applied.channels == 7
    assert applied.dropped is not None
    with psycopg.connect(old_database) as conn:
        assert present_tables(conn) == ()
    with psycopg.connect(scratch_database) as conn:
        assert conn.execute(
            "SELECT count(*) FROM notification_routing_rules"
        ).fetchone() == (9,)
        assert conn.execute(
            "SELECT action FROM legacy_cutover_runs ORDER BY id"
        ).fetchall() == [("apply",), ("drop",)]


def test_a_failing_apply_writes_nothing(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    # A channel already claiming an old integration's id, as if written by hand:
    # the apply's insert fails on the unique legacy id and the whole run rolls back.
    with psycopg.connect(legacy.url) as conn:
        conn.execute(
            "INSERT INTO notification_channels (id, tenant_id, name, channel_type,"
            " legacy_integration_id) VALUES (gen_random_uuid(), %s, 'hand-made',"
            " 'webhook', %s)",
            (legacy.known_tenant, legacy.id("plain_hook")),
        )

    with pytest.raises(CutoverFailed) as failed:
        run_cutover(cutover_settings, apply=True, with_history=True)

    assert isinstance(failed.value.__cause__, psycopg.errors.UniqueViolation)
    assert str(failed.value).startswith(
        "the apply failed (rolled back, nothing was written): duplicate key"
    )

    with psycopg.connect(legacy.url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM notification_channels"
        ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM config_outbox").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM job_outbox").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (1,)
        assert present_tables(conn) == LEGACY_TABLES


def test_an_unmigrated_database_gets_a_clear_error(scratch_database: str) -> None:
    result = cutover(scratch_database)

    assert result.returncode == 1
    assert "not migrated; run `switchboard migrate`" in result.stderr


def test_a_source_that_is_not_the_old_schema_is_named(
    scratch_database: str, old_database: str
) -> None:
    db.migrate(scratch_database)
    with psycopg.connect(old_database) as conn:
        conn.execute("CREATE TABLE integrations (id uuid, name text, type text)")

    result = cutover(scratch_database, "--source-url", old_database)

    assert result.returncode == 1
    assert (
        "table integrations does not look like the old integrations system's "
        "(no column tenant_id, enabled, config, created_at)"
    ) in result.stderr
    assert "rolled back" not in result.stderr


def test_a_failing_plan_says_nothing_was_written(
    scratch_database: str, old_database: str, settings: Settings
) -> None:
    db.migrate(scratch_database)
    # Every column is there, but one cannot be read the way the cutover reads it.
    with psycopg.connect(old_database) as conn:
        conn.execute(
            "CREATE TABLE integrations (id uuid, tenant_id uuid, name text,"
            " type text, enabled boolean, config jsonb, created_at json)"
        )
    target = settings.model_copy(update={"database_url": scratch_database})

    with pytest.raises(CutoverFailed) as failed:
        run_cutover(target, source_url=old_database)
    result = cutover(scratch_database, "--source-url", old_database)

    assert str(failed.value).startswith(
        "reading the old tables failed (nothing was written): "
    )
    assert result.returncode == 1
    assert "reading the old tables failed (nothing was written)" in result.stderr
    assert "rolled back" not in result.stderr
