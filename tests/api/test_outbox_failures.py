"""A row Kafka can never take does not stall the outbox, and readiness tells
when the outbox is not being published.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from fastapi.testclient import TestClient

from services.api import relay as relay_module
from services.api.app import create_app
from services.api.relay import OutboxRelay, RelayError
from switchboard import db
from switchboard.settings import Settings

# The test topic takes records up to this size; the producer's own limit is 1 MB.
TOPIC_MAX_BYTES = 2000


@pytest.fixture
def scratch(settings: Settings, scratch_database: str) -> Iterator[Settings]:
    """Settings over a migrated database of this test's own."""
    db.migrate(scratch_database)
    yield settings.model_copy(update={"database_url": scratch_database})


def _insert(conn: psycopg.Connection, rows: list[tuple[str, bytes]]) -> list[int]:
    return [
        conn.execute(
            "INSERT INTO config_outbox (message_key, payload) VALUES (%s, %s)"
            " RETURNING id",
            row,
        ).fetchone()[0]
        for row in rows
    ]


def _states(conn: psycopg.Connection) -> list[tuple[str, str | None]]:
    return [
        (row[0], row[1])
        for row in conn.execute(
            "SELECT CASE WHEN published_at IS NOT NULL THEN 'published'"
            " WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END, error"
            " FROM config_outbox ORDER BY id"
        )
    ]


def _keys_on(settings: Settings, topic: str) -> list[str]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": topic}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    keys: list[str] = []
    while len(keys) < high:
        message = consumer.poll(10)
        assert message is not None and message.error() is None
        keys.append(message.key().decode())
    consumer.close()
    return keys


@pytest.mark.parametrize(
    "refused_size",
    [TOPIC_MAX_BYTES * 3, 2_000_000],
    ids=["broker-refuses", "producer-refuses"],
)
def test_a_row_kafka_refuses_is_marked_failed_and_later_rows_go_on(
    scratch: Settings,
    make_topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    refused_size: int,
) -> None:
    topic = make_topic("relay", config={"max.message.bytes": str(TOPIC_MAX_BYTES)})
    relay = OutboxRelay(scratch, topic=topic)
    failed_before = _failed_count()
    with psycopg.connect(scratch.database_url, autocommit=True) as conn:
        # Random bytes, so compression cannot bring the record under the limit.
        ids = _insert(
            conn,
            [("a", b"1"), ("big", os.urandom(refused_size)), ("c", b"3")],
        )

        with caplog.at_level(logging.ERROR, logger="services.api.relay"):
            relay.publish_batch(conn)
            relay.publish_batch(conn)

        states = _states(conn)

    assert [state for state, _error in states] == ["published", "failed", "published"]
    assert "too large" in (states[1][1] or "")
    assert _keys_on(scratch, topic) == ["a", "c"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [(r.outbox_id, r.key) for r in errors] == [(ids[1], "big")]
    assert _failed_count() == failed_before + 1


def _failed_count() -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "switchboard_relay_failed_total", {"code": "MSG_SIZE_TOO_LARGE"}
    )
    return value or 0.0


def test_a_failure_that_may_pass_leaves_rows_pending_in_order(
    scratch: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unreachable broker never acknowledges; a short wait keeps the test fast.
    monkeypatch.setattr(relay_module, "ACK_TIMEOUT_S", 1.0)
    unreachable = scratch.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    relay = OutboxRelay(unreachable)
    with psycopg.connect(scratch.database_url, autocommit=True) as conn:
        _insert(conn, [("a", b"1"), ("b", b"2")])

        with pytest.raises(RelayError):
            relay.publish_batch(conn)

        assert _states(conn) == [("pending", None), ("pending", None)]


def test_readyz_is_503_while_an_old_outbox_row_waits(scratch: Settings) -> None:
    with psycopg.connect(scratch.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO config_outbox (message_key, payload, created_at)"
            " VALUES ('channel:x', NULL, now() - interval '5 minutes')"
        )
        with TestClient(create_app(scratch)) as client:
            stalled = client.get("/readyz")
            metrics = client.get("/metrics").text
            conn.execute("UPDATE config_outbox SET failed_at = now()")
            recovered = client.get("/readyz")

    assert stalled.status_code == 503
    assert stalled.json()["outbox"] is False
    assert "outbox relay" in stalled.json()["reason"]
    assert "switchboard_outbox_backlog_rows 1.0" in metrics
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["outbox"] is True
