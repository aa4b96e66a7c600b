"""``switchboard jobs retry``: dead jobs re-queued through the API's retry path."""

from __future__ import annotations

import json
import uuid

from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from services.ops.dlq import Replayer, read_dead_letters
from services.ops.jobs import DeadJobFilter, dead_jobs, retry_jobs
from switchboard.cli import app
from switchboard.kafka import make_producer
from switchboard.topics import JOBS_TOPIC, delivery_topic
from tests.ops.helpers import (
    dead_letter_headers,
    decoded,
    end_offsets,
    make_command,
    produce,
    read_since,
)

MAIN_TOPIC = delivery_topic("webhook")


def _dead_job(conn, tenant: str, channel: str, reason: str, keep_alert: bool = True):
    """A dead job row as the recorder leaves it, with the alert it was queued for."""
    command = make_command(tenant, channel)
    alert = command["alert"]
    stored = {**alert, "occurred_at": alert["occurred_at"].isoformat()}
    conn.execute(
        "INSERT INTO notification_jobs (job_id, tenant_id, channel_id, channel_type,"
        " event_id, alert_id, event_kind, severity, state, attempts, state_attempt,"
        " last_reason, event_occurred_at, created_at, updated_at, alert)"
        " VALUES (%s, %s, %s, 'webhook', %s, %s, %s, %s, 'dead', 6, 6, %s, %s,"
        " now(), now(), %s)",
        (
            command["job_id"],
            tenant,
            channel,
            alert["event_id"],
            alert["alert_id"],
            alert["kind"],
            alert["severity"],
            reason,
            alert["occurred_at"],
            Jsonb(stored) if keep_alert else None,
        ),
    )
    return command


def _retry(*args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["jobs", "retry", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dead_jobs_are_requeued_as_their_next_attempt(settings, codec, dict_conn):
    tenant, channel = str(uuid.uuid4()), str(uuid.uuid4())
    refused = _dead_job(dict_conn, tenant, channel, "http_4xx")
    timed_out = _dead_job(dict_conn, tenant, channel, "timeout")
    main_starts = end_offsets(settings, MAIN_TOPIC)
    jobs_starts = end_offsets(settings, JOBS_TOPIC)

    dry = _retry("--tenant", tenant, "--dry-run")
    nothing_yet = read_since(settings, MAIN_TOPIC, main_starts)
    done = _retry("--tenant", tenant, "--reason", "timeout")

    assert sorted((r["job_id"], r["attempt"], r["queued"]) for r in dry) == sorted(
        [(refused["job_id"], 7, False), (timed_out["job_id"], 7, False)]
    )
    mine = [c for c in decoded(codec, "DeliveryCommand", nothing_yet)]
    assert [c for c in mine if c["channel_id"] == channel] == []
    assert [(r["job_id"], r["attempt"], r["queued"]) for r in done] == [
        (timed_out["job_id"], 7, True)
    ]
    sent = decoded(
        codec, "DeliveryCommand", read_since(settings, MAIN_TOPIC, main_starts)
    )
    sent = [c for c in sent if c["channel_id"] == channel]
    assert [(c["job_id"], c["attempt"]) for c in sent] == [(timed_out["job_id"], 7)]
    assert sent[0]["alert"] == timed_out["alert"]
    events = decoded(codec, "JobEvent", read_since(settings, JOBS_TOPIC, jobs_starts))
    assert [
        (e["state"], e["attempt"]) for e in events if e["channel_id"] == channel
    ] == [("queued", 7)]


def test_a_job_without_its_alert_is_reported_not_queued(settings, dict_conn):
    tenant, channel = str(uuid.uuid4()), str(uuid.uuid4())
    lost = _dead_job(dict_conn, tenant, channel, "http_4xx", keep_alert=False)

    results = _retry("--channel", channel)

    assert [(r["job_id"], r["queued"]) for r in results] == [(lost["job_id"], False)]
    assert "alert was not recorded" in results[0]["detail"]


def test_retry_without_a_selection_is_refused():
    result = CliRunner().invoke(app, ["jobs", "retry"])

    assert result.exit_code == 1
    assert "--all" in result.output


def test_a_retry_already_queued_is_not_queued_again(settings, codec, dict_conn):
    tenant, channel = str(uuid.uuid4()), str(uuid.uuid4())
    job = _dead_job(dict_conn, tenant, channel, "timeout")
    rows = dead_jobs(dict_conn, DeadJobFilter(channel_id=uuid.UUID(channel)))
    starts = end_offsets(settings, MAIN_TOPIC)
    producer = make_producer(settings)

    # The row stays dead until a recorder reads the queued event, so the second
    # run sees the same dead job and would pick the same attempt.
    first = retry_jobs(dict_conn, producer, codec, rows)
    second = retry_jobs(dict_conn, producer, codec, rows)

    assert [(r.queued, r.attempt) for r in first] == [(True, 7)]
    assert [(r.queued, r.detail) for r in second] == [
        (False, "attempt 7 is already queued")
    ]
    sent = decoded(codec, "DeliveryCommand", read_since(settings, MAIN_TOPIC, starts))
    assert [
        (c["job_id"], c["attempt"]) for c in sent if c["channel_id"] == channel
    ] == [(job["job_id"], 7)]


def test_a_dead_letter_of_a_job_retried_since_is_not_replayed_on_top(
    settings, codec, dict_conn, make_topic
):
    tenant, channel = str(uuid.uuid4()), str(uuid.uuid4())
    job = _dead_job(dict_conn, tenant, channel, "http_4xx")
    dlq = make_topic("retrydlq")
    dead = {**job, "attempt": 6}
    produce(
        settings,
        dlq,
        [
            (
                channel,
                codec.encode("DeliveryCommand", dead),
                dead_letter_headers("http_4xx", 6),
            )
        ],
    )
    rows = dead_jobs(dict_conn, DeadJobFilter(channel_id=uuid.UUID(channel)))
    starts = end_offsets(settings, MAIN_TOPIC)
    producer = make_producer(settings)

    retried = retry_jobs(dict_conn, producer, codec, rows)
    letters = read_dead_letters(settings, dlq, codec)
    replayed = Replayer(dict_conn, producer, codec).run(letters)

    assert [(r.queued, r.attempt) for r in retried] == [(True, 7)]
    # Unless a recorder on the shared stack recorded the retry first (the job is
    # then queued), only the claim can tell the replay that attempt 7 is taken.
    assert [str(r.outcome) for r in replayed] == ["skipped"]
    assert replayed[0].detail in ("attempt 7 is already queued", "job is queued")
    sent = decoded(codec, "DeliveryCommand", read_since(settings, MAIN_TOPIC, starts))
    assert [
        (c["job_id"], c["attempt"]) for c in sent if c["channel_id"] == channel
    ] == [(job["job_id"], 7)]
    remembered = dict_conn.execute(
        "SELECT count(*) AS n FROM dlq_replays WHERE topic = %s", (dlq,)
    ).fetchone()
    assert remembered == {"n": 0}
