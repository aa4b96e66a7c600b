"""The job-event outbox: the relay publishes it to notify.jobs, in order, apart
from the configuration outbox; an older database without it still relays."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.outbox import job_backlog, record_job_events
from services.api.relay import OutboxRelay
from switchboard import db
from switchboard.codec import Codec
from switchboard.settings import Settings


@pytest.fixture
def scratch(settings: Settings, scratch_database: str) -> Iterator[Settings]:
    """Settings over a migrated database of this test's own."""
    db.migrate(scratch_database)
    yield settings.model_copy(update={"database_url": scratch_database})


def _messages(settings: Settings, topic: str) -> list[tuple[str, bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": topic}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    found: list[tuple[str, bytes]] = []
    while len(found) < high:
        message = consumer.poll(10)
        assert message is not None and message.error() is None
        found.append((message.key().decode(), message.value()))
    consumer.close()
    return found


def _event(job_id: str, state: str, attempt: int, minute: int) -> dict:
    moment = datetime(2026, 11, 30, 8, minute, tzinfo=UTC)
    return {
        "job_id": job_id,
        "state": state,
        "attempt": attempt,
        "occurred_at": moment,
        "tenant_id": str(uuid.uuid4()),
        "channel_id": str(uuid.uuid4()),
        "rule_id": None,
        "channel_type": "webhook",
        "event_id": "ev",
        "alert_id": "a",
        "event_kind": "OPEN",
        "severity": "HIGH",
        "event_occurred_at": moment,
        "status_code": None,
        "reason": None,
        "error": None,
        "duration_ms": None,
        "next_attempt_at": None,
        "is_test": False,
        "alert": None,
    }


def test_job_events_go_to_the_jobs_topic_in_order_and_config_stays_apart(
    scratch: Settings, make_topic: Callable[..., str], codec: Codec
) -> None:
    config_topic, jobs_topic = make_topic("config"), make_topic("jobs")
    job = str(uuid.uuid4())
    events = [
        _event(job, "queued", 1, 0),
        _event(job, "retrying", 1, 1),
        _event(job, "delivered", 2, 2),
    ]
    with psycopg.connect(scratch.database_url, autocommit=True) as conn:
        with conn.transaction():
            assert record_job_events(conn, codec, events) == 3
            conn.execute(
                "INSERT INTO config_outbox (message_key, payload) VALUES ('c', 'x')"
            )
        assert job_backlog(conn) == 3

        relay = OutboxRelay(scratch, topic=config_topic, jobs_topic=jobs_topic)
        assert relay.publish_batch(conn) == 4
        assert relay.publish_batch(conn) == 0
        assert job_backlog(conn) == 0

    published = _messages(scratch, jobs_topic)
    assert [key for key, _ in published] == [job] * 3
    decoded = [codec.decode("JobEvent", value) for _, value in published]
    assert [(str(e["state"]), e["attempt"]) for e in decoded] == [
        ("queued", 1),
        ("retrying", 1),
        ("delivered", 2),
    ]
    assert _messages(scratch, config_topic) == [("c", b"x")]


def test_a_database_without_the_job_outbox_still_relays_configuration(
    settings: Settings, scratch_database: str, make_topic: Callable[..., str]
) -> None:
    # A relay of this release may start before `switchboard migrate` ran.
    db.migrate(scratch_database, "0005")
    older = settings.model_copy(update={"database_url": scratch_database})
    config_topic, jobs_topic = make_topic("config"), make_topic("jobs")
    relay = OutboxRelay(older, topic=config_topic, jobs_topic=jobs_topic)
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO config_outbox (message_key, payload) VALUES ('c', 'x')"
        )

        assert relay.publish_batch(conn) == 1
        relay.purge_published(conn)

    assert _messages(older, config_topic) == [("c", b"x")]


def test_a_long_job_history_backlog_does_not_make_the_api_unready(
    scratch: Settings, codec: Codec
) -> None:
    with psycopg.connect(scratch.database_url, autocommit=True) as conn:
        record_job_events(conn, codec, [_event(str(uuid.uuid4()), "queued", 1, 0)])
        conn.execute(
            "UPDATE job_outbox SET created_at = %s",
            (datetime.now(UTC) - timedelta(hours=1),),
        )
        with TestClient(create_app(scratch)) as client:
            ready = client.get("/readyz")

    assert ready.status_code == 200, ready.text
