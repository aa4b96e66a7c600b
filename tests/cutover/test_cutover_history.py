"""Copied history reaches the job tables through notify.jobs, and a replay rebuilds it.

The apply writes the old jobs' events to ``job_outbox`` only; a real relay
publishes them to a jobs topic of this test and a real recorder writes the job
tables from it. Recording the same topic into a fresh database must give the
same rows: the copied history is a projection of notify.jobs like every job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from cutover_fixture import SECRETS, Legacy
from cutover_reference import rows

from services.api.relay import OutboxRelay
from services.cutover.run import run_cutover
from services.recorder.service import Recorder
from switchboard import db
from switchboard.settings import Settings

JOB_COLUMNS = (
    "job_id, tenant_id, channel_id, rule_id, channel_type, event_id, alert_id, "
    "event_kind, severity, state, attempts, state_attempt, state_rank, "
    "last_status_code, last_reason, last_error, event_occurred_at, created_at, "
    "updated_at, delivered_at, next_attempt_at, alert, is_test"
)
LOG_COLUMNS = (
    "job_id, attempt, state, status_code, reason, error, duration_ms, occurred_at"
)
# The events of the three finished jobs the fixture can copy: a queued event
# each, and one per attempt (j_lab recorded none, so it gets one outcome).
EXPECTED_EVENTS = 3 + 6


@pytest.fixture
def replay_database(settings: Settings, unique: str) -> Iterator[str]:
    """A second migrated scratch database to replay notify.jobs into."""
    name = f"scratch_replay_{unique}"
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = settings.database_url.rsplit("/", 1)[0] + f"/{name}"
    db.migrate(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def relay_everything(settings: Settings, config_topic: str, jobs_topic: str) -> int:
    """Publish both outboxes of ``settings``' database; how many rows."""
    relay = OutboxRelay(settings, topic=config_topic, jobs_topic=jobs_topic)
    published = 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while settled := relay.publish_batch(conn):
            published += settled
    return published


def record(settings: Settings, topic: str, database_url: str, expected: int) -> None:
    """Run a recorder of its own group over ``topic`` until it read ``expected``."""
    recorder = Recorder(
        settings,
        topic=topic,
        group=f"test.cutover.recorder.{uuid.uuid4()}",
        database_url=database_url,
    )
    try:
        consumed = 0
        for _ in range(300):
            consumed += recorder.step()
            if consumed >= expected:
                return
        raise AssertionError(f"recorded {consumed} of {expected} job events")
    finally:
        recorder.close()


def tables(url: str) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(url) as conn:
        jobs = conn.execute(
            f"SELECT {JOB_COLUMNS} FROM notification_jobs ORDER BY job_id"
        ).fetchall()
        log = conn.execute(
            f"SELECT {LOG_COLUMNS} FROM notification_log"
            " ORDER BY job_id, attempt, state"
        ).fetchall()
    return jobs, log


def test_history_goes_through_notify_jobs_and_a_replay_rebuilds_it(
    legacy: Legacy,
    cutover_settings: Settings,
    make_topic: Callable[..., str],
    replay_database: str,
) -> None:
    # An old error that quotes the integration's credentials, as servers do.
    with psycopg.connect(legacy.url) as conn:
        conn.execute(
            "UPDATE delivery_attempts SET error = %s"
            " WHERE job_id = %s AND attempt_no = 1",
            (
                "HTTP 503: token header-token-77aa refused at /hooks/ops?token="
                "query-token-5f1e2d",
                legacy.id("j_delivered"),
            ),
        )
    config_topic, jobs_topic = make_topic("config"), make_topic("jobs", 2)

    applied = run_cutover(cutover_settings, apply=True, with_history=True)

    assert applied.applied is not None and applied.applied.job_events == 9
    assert rows(legacy.url, "SELECT count(*) AS n FROM notification_jobs") == [
        {"n": 0}
    ], "the apply must leave the job tables to the recorder"
    payloads = rows(legacy.url, "SELECT payload FROM job_outbox ORDER BY id")
    assert len(payloads) == EXPECTED_EVENTS
    for secret in SECRETS:
        assert all(secret.encode() not in row["payload"] for row in payloads)

    relay_everything(cutover_settings, config_topic, jobs_topic)
    record(cutover_settings, jobs_topic, legacy.url, EXPECTED_EVENTS)

    assert_history(legacy)
    live = tables(legacy.url)
    record(cutover_settings, jobs_topic, replay_database, EXPECTED_EVENTS)
    assert tables(replay_database) == live


def assert_history(legacy: Legacy) -> None:
    """The copied jobs and attempts as the recorder wrote them."""
    jobs = {
        str(row["job_id"]): row
        for row in rows(legacy.url, "SELECT * FROM notification_jobs")
    }
    assert set(jobs) == {legacy.id(r) for r in ("j_delivered", "j_dead", "j_lab")}
    delivered = jobs[legacy.id("j_delivered")]
    assert (delivered["state"], delivered["attempts"], delivered["severity"]) == (
        "delivered",
        2,
        "HIGH",
    )
    assert delivered["event_id"] == "ev-1" and delivered["event_kind"] == "OPEN"
    assert delivered["created_at"].isoformat() == "2026-11-30T08:00:00+00:00"
    assert delivered["delivered_at"] is not None and delivered["rule_id"] is None
    dead = jobs[legacy.id("j_dead")]
    assert (dead["state"], dead["attempts"], dead["last_error"]) == (
        "dead",
        3,
        "timeout",
    )
    assert jobs[legacy.id("j_lab")]["tenant_id"] == uuid.UUID(legacy.new_tenant)

    log = rows(
        legacy.url,
        "SELECT job_id, attempt, state, status_code, reason, error, duration_ms"
        " FROM notification_log ORDER BY job_id, attempt",
    )
    by_job: dict[str, list[tuple]] = {}
    for entry in log:
        by_job.setdefault(str(entry["job_id"]), []).append(
            (entry["attempt"], entry["state"], entry["status_code"], entry["reason"])
        )
    assert by_job[legacy.id("j_delivered")] == [
        (1, "retrying", 503, "http_5xx"),
        (2, "delivered", 200, "delivered"),
    ]
    assert [state for _, state, _, _ in by_job[legacy.id("j_dead")]] == [
        "retrying",
        "retrying",
        "dead",
    ]
    assert by_job[legacy.id("j_lab")] == [(1, "delivered", None, "delivered")]
    first = next(e for e in log if str(e["job_id"]) == legacy.id("j_delivered"))
    assert first["duration_ms"] == 250
    assert "[redacted]" in first["error"]
    for secret in SECRETS:
        assert all(secret not in (entry["error"] or "") for entry in log)
