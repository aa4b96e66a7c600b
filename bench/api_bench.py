"""Configuration API write latency, change propagation and relay throughput.

Run: ``.venv/bin/python bench/api_bench.py [--writes 300] [--backlog 5000]``.
It uses its own scratch database and its own config topic (both removed at the
end), so the shared outbox and ``notify.config`` are left alone.

1. Write latency: sequential channel updates through the app in-process
   (validation, encryption, row and outbox row in one transaction).
2. Propagation: with a relay running, the time from a write's answer until its
   ConfigEvent is readable on the topic.
3. Relay throughput: a backlog of outbox rows published from a standing start.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.relay import OutboxRelay
from services.api.tenants import create_tenant
from switchboard.db import migrate
from switchboard.kafka import make_admin
from switchboard.settings import Settings

WEBHOOK = {
    "channel_type": "webhook",
    "name": "bench",
    "config": {"url": "https://hooks.example.com/bench"},
    "secrets": {"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
}


def _scratch_database(settings: Settings, name: str) -> str:
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = settings.database_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    return url


def _drop_database(settings: Settings, name: str) -> None:
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms"


def _consumer(settings: Settings, topic: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench.{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    return consumer


def bench_writes(client: TestClient, url: str, writes: int) -> None:
    """Sequential partial updates; prints latency percentiles."""
    samples = []
    for index in range(writes):
        started = time.perf_counter()
        response = client.patch(url, json={"name": f"bench {index}"})
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    print(f"write latency over {writes} updates: {_percentiles(samples)}")


def bench_propagation(
    client: TestClient, url: str, consumer: Consumer, rounds: int
) -> None:
    """Write, then wait for the change on the topic; prints latency percentiles."""
    samples = []
    for index in range(rounds):
        response = client.patch(url, json={"name": f"prop {index}"})
        answered = time.perf_counter()
        assert response.status_code == 200
        while not any(
            m.error() is None and f"prop {index}".encode() in (m.value() or b"")
            for m in consumer.consume(100, timeout=0.05)
        ):
            pass
        samples.append((time.perf_counter() - answered) * 1000)
    print(f"write answered -> on topic over {rounds} changes: {_percentiles(samples)}")


def bench_backlog(database_url: str, relay: OutboxRelay, rows: int) -> None:
    """Publish a backlog of copies of the latest outbox row; prints rows/s."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO config_outbox (message_key, payload)"
            " SELECT message_key, payload FROM config_outbox, generate_series(1, %s)"
            " WHERE id = (SELECT max(id) FROM config_outbox)",
            (rows,),
        )
        started = time.perf_counter()
        while relay.publish_batch(conn):
            pass
        elapsed = time.perf_counter() - started
    print(
        f"relay backlog: {rows} rows in {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s)"
    )


def main() -> None:
    """Run the three measurements and clean up."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=5000)
    args = parser.parse_args()

    base = Settings()
    name = f"bench_api_{uuid.uuid4().hex[:8]}"
    topic = f"bench.api.{uuid.uuid4().hex[:8]}.config"
    admin = make_admin(base)
    admin.create_topics([NewTopic(topic, 1)])[topic].result(30)
    settings = base.model_copy(update={"database_url": _scratch_database(base, name)})
    try:
        _run(settings, topic, args)
    finally:
        admin.delete_topics([topic], operation_timeout=30)
        _drop_database(base, name)


def _run(settings: Settings, topic: str, args: argparse.Namespace) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        _tenant, key = create_tenant(conn, "bench")
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        channel = client.post("/customer/notification-channels", json=WEBHOOK).json()
        url = f"/customer/notification-channels/{channel['id']}"
        bench_writes(client, url, args.writes)

        relay = OutboxRelay(settings, topic=topic)
        thread = relay.start_thread()
        consumer = _consumer(settings, topic)
        bench_propagation(client, url, consumer, args.rounds)
        relay.stop()
        thread.join(timeout=15)
        consumer.close()

    bench_backlog(
        settings.database_url, OutboxRelay(settings, topic=topic), args.backlog
    )


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
