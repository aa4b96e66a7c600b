"""The recorder on the real broker and database: monotonic, idempotent, replayable."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg

from services.recorder.service import Recorder
from switchboard.domain import JobState
from switchboard.jobs import job_event, utc_now
from switchboard.kafka import make_producer
from tests.deliverer.helpers import make_command

JOB_COLUMNS = (
    "job_id, tenant_id, channel_id, rule_id, channel_type, event_id, alert_id, "
    "event_kind, severity, state, attempts, state_attempt, state_rank, "
    "last_status_code, last_reason, last_error, event_occurred_at, created_at, "
    "updated_at, delivered_at, next_attempt_at, alert, is_test"
)
LOG_COLUMNS = (
    "job_id, attempt, state, status_code, reason, error, duration_ms, occurred_at"
)


def _history(tenant: str) -> tuple[list[dict], list[dict]]:
    """Events of three jobs: delivered after retries, dead, and cancelled,
    with a duplicate and a late ``retrying`` that arrives after ``delivered``."""
    channel = str(uuid.uuid4())
    delivered, dead, cancelled = (make_command(tenant, channel) for _ in range(3))
    start = utc_now()

    def at(seconds: int):
        return start + timedelta(seconds=seconds)

    retrying_2 = job_event(
        delivered,
        JobState.RETRYING,
        2,
        occurred_at=at(3),
        status_code=500,
        reason="http_5xx",
        error="HTTP 500",
        duration_ms=12,
        next_attempt_at=at(5),
    )
    events = [
        job_event(delivered, JobState.QUEUED, 1, occurred_at=at(0)),
        job_event(
            delivered,
            JobState.RETRYING,
            1,
            occurred_at=at(1),
            status_code=503,
            reason="http_5xx",
            error="HTTP 503",
            duration_ms=10,
            next_attempt_at=at(2),
        ),
        retrying_2,
        job_event(
            delivered,
            JobState.DELIVERED,
            3,
            occurred_at=at(6),
            status_code=200,
            reason="delivered",
            duration_ms=8,
        ),
        retrying_2,
        job_event(dead, JobState.QUEUED, 1, occurred_at=at(0)),
        job_event(
            dead,
            JobState.DEAD,
            1,
            occurred_at=at(1),
            status_code=400,
            reason="http_4xx",
            error="HTTP 400: no",
            duration_ms=5,
        ),
        job_event(cancelled, JobState.QUEUED, 1, occurred_at=at(0)),
        job_event(
            cancelled,
            JobState.CANCELLED,
            1,
            occurred_at=at(1),
            reason="channel_gone",
            error="channel deleted or unknown",
        ),
    ]
    return events, [delivered, dead, cancelled]


def _publish(settings, codec, topic: str, events: list[dict]) -> None:
    producer = make_producer(settings)
    for event in events:
        producer.produce(topic, codec.encode("JobEvent", event), event["job_id"])
    assert producer.flush(30) == 0


def _record(settings, topic: str, database_url: str, expected: int) -> None:
    recorder = Recorder(
        settings,
        topic=topic,
        group=f"test.recorder.{uuid.uuid4()}",
        database_url=database_url,
    )
    try:
        consumed = 0
        for _ in range(300):
            consumed += recorder.step()
            if consumed >= expected:
                return
        raise AssertionError(f"consumed {consumed} of {expected} events")
    finally:
        recorder.close()


def _tables(database_url: str, job_ids: list[str]) -> tuple[list, list]:
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute(
            f"SELECT {JOB_COLUMNS} FROM notification_jobs "
            "WHERE job_id = ANY(%s::uuid[]) ORDER BY job_id",
            (job_ids,),
        ).fetchall()
        log = conn.execute(
            f"SELECT {LOG_COLUMNS} FROM notification_log "
            "WHERE job_id = ANY(%s::uuid[]) ORDER BY job_id, attempt, state",
            (job_ids,),
        ).fetchall()
    return jobs, log


def test_jobs_move_forward_only_and_attempts_are_logged_once(
    settings, codec, make_topic, conn
) -> None:
    topic = make_topic("jobs", 2)
    events, (delivered, dead, cancelled) = _history(str(uuid.uuid4()))
    _publish(settings, codec, topic, events)

    _record(settings, topic, settings.database_url, len(events))

    rows = {
        str(row[0]): row
        for row in conn.execute(
            "SELECT job_id, state, attempts, last_status_code, delivered_at, "
            "next_attempt_at FROM notification_jobs WHERE job_id = ANY(%s::uuid[])",
            ([c["job_id"] for c in (delivered, dead, cancelled)],),
        )
    }
    state, attempts, status, delivered_at, next_at = rows[delivered["job_id"]][1:]
    assert (state, attempts, status, next_at) == ("delivered", 3, 200, None)
    assert delivered_at is not None
    assert rows[dead["job_id"]][1:4] == ("dead", 1, 400)
    assert rows[cancelled["job_id"]][1:3] == ("cancelled", 0)
    log = conn.execute(
        "SELECT attempt, state, reason FROM notification_log WHERE job_id = %s "
        "ORDER BY attempt",
        (delivered["job_id"],),
    ).fetchall()
    assert log == [
        (1, "retrying", "http_5xx"),
        (2, "retrying", "http_5xx"),
        (3, "delivered", "delivered"),
    ]


def test_replay_from_offset_zero_gives_identical_tables(
    settings, codec, make_topic, scratch_database
) -> None:
    from switchboard.db import migrate

    topic = make_topic("jobs", 3)
    events, commands = _history(str(uuid.uuid4()))
    more, more_commands = _history(str(uuid.uuid4()))
    _publish(settings, codec, topic, events + more)
    job_ids = [c["job_id"] for c in commands + more_commands]
    total = len(events) + len(more)
    _record(settings, topic, settings.database_url, total)
    live = _tables(settings.database_url, job_ids)

    migrate(scratch_database)
    _record(settings, topic, scratch_database, total)
    _record(settings, topic, settings.database_url, total)

    assert live[0] and live[1]
    assert _tables(scratch_database, job_ids) == live
    assert _tables(settings.database_url, job_ids) == live


def test_an_unstorable_event_is_skipped_and_the_rest_recorded(
    settings, codec, make_topic, conn
) -> None:
    topic = make_topic("jobs", 1)
    events, commands = _history(str(uuid.uuid4()))
    foreign = dict(events[0], job_id="not-a-uuid")
    _publish(settings, codec, topic, [foreign, *events])
    producer = make_producer(settings)
    producer.produce(topic, b"not a job event", "x")
    producer.flush(30)

    _record(settings, topic, settings.database_url, len(events) + 2)

    jobs, _log = _tables(settings.database_url, [c["job_id"] for c in commands])
    assert len(jobs) == len(commands)


def test_a_dead_job_keeps_its_alert_so_it_can_be_retried(
    settings, codec, make_topic, conn
) -> None:
    from psycopg.rows import dict_row

    from services.api.routes.jobs import retry_command

    topic = make_topic("jobs", 1)
    events, (_delivered, dead, _cancelled) = _history(str(uuid.uuid4()))
    _publish(settings, codec, topic, events)

    _record(settings, topic, settings.database_url, len(events))

    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(
            "SELECT * FROM notification_jobs WHERE job_id = %s", (dead["job_id"],)
        ).fetchone()
    command = retry_command(row)
    assert row["state"] == "dead"
    assert row["alert"]["alert_id"] == dead["alert"]["alert_id"]
    assert command["alert"] == dead["alert"]
    assert command["attempt"] == 2
    assert codec.decode("DeliveryCommand", codec.encode("DeliveryCommand", command))


def test_nul_in_alert_and_error_text_is_stored_as_a_replacement_character(
    settings, codec, make_topic, conn
) -> None:
    topic = make_topic("jobs", 1)
    command = make_command(str(uuid.uuid4()), str(uuid.uuid4()))
    command["alert"].update(
        summary="s\u0000nul", details="d\u0000", labels={"k\u0000": "v\u0000"}
    )
    events = [
        job_event(command, JobState.QUEUED, 1),
        job_event(
            command,
            JobState.DEAD,
            1,
            status_code=400,
            reason="http_4xx",
            error="HTTP 400: bad\u0000body",
            duration_ms=5,
        ),
    ]
    _publish(settings, codec, topic, events)

    _record(settings, topic, settings.database_url, len(events))

    row = conn.execute(
        "SELECT state, alert, last_error FROM notification_jobs WHERE job_id = %s",
        (command["job_id"],),
    ).fetchone()
    log = conn.execute(
        "SELECT error FROM notification_log WHERE job_id = %s", (command["job_id"],)
    ).fetchall()
    state, alert, last_error = row
    assert state == "dead"
    assert alert["summary"] == "s\ufffdnul"
    assert alert["details"] == "d\ufffd"
    assert alert["labels"] == {"k\ufffd": "v\ufffd"}
    assert last_error == "HTTP 400: bad\ufffdbody"
    assert log == [("HTTP 400: bad\ufffdbody",)]


def test_a_later_attempt_never_overwrites_delivered(
    settings, codec, make_topic, conn
) -> None:
    """A duplicate command sent again after delivery (the recorder was behind)
    fails with a higher attempt number: it is logged, but the job stays
    delivered."""
    topic = make_topic("jobs", 1)
    command = make_command(str(uuid.uuid4()), str(uuid.uuid4()))
    start = utc_now()
    events = [
        job_event(command, JobState.QUEUED, 1, occurred_at=start),
        job_event(
            command,
            JobState.DELIVERED,
            1,
            occurred_at=start + timedelta(seconds=1),
            status_code=200,
            reason="delivered",
        ),
        job_event(
            command,
            JobState.RETRYING,
            2,
            occurred_at=start + timedelta(seconds=2),
            status_code=503,
            reason="http_5xx",
            next_attempt_at=start + timedelta(seconds=12),
        ),
        job_event(
            command,
            JobState.DEAD,
            3,
            occurred_at=start + timedelta(seconds=13),
            status_code=400,
            reason="http_4xx",
        ),
    ]
    _publish(settings, codec, topic, events)

    _record(settings, topic, settings.database_url, len(events))

    row = conn.execute(
        "SELECT state, attempts, last_status_code, next_attempt_at "
        "FROM notification_jobs WHERE job_id = %s",
        (command["job_id"],),
    ).fetchone()
    assert row == ("delivered", 1, 200, None)
    log = conn.execute(
        "SELECT attempt, state FROM notification_log WHERE job_id = %s "
        "ORDER BY attempt",
        (command["job_id"],),
    ).fetchall()
    assert log == [(1, "delivered"), (2, "retrying"), (3, "dead")]
