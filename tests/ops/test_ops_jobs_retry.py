"""``switchboard jobs retry``: dead jobs re-queued through the API's retry path."""

from __future__ import annotations

import json
import uuid

from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from switchboard.cli import app
from switchboard.topics import JOBS_TOPIC, delivery_topic
from tests.ops.helpers import decoded, end_offsets, make_command, read_since

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
