"""How fast the operator tools read a dead-letter topic and compute group lag.

Run: ``.venv/bin/python bench/ops_bench.py [--dead-letters 5000] [--partitions 3]``.
It fills its own dead-letter topic (removed at the end) and its own consumer
group, so shared topics and groups are left alone.

1. ``dlq list``: reading and decoding every dead letter of the topic.
2. ``dlq replay --dry-run``: selecting and planning a replay of all of them.
3. ``groups describe``: one group's lag over the topic's partitions.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from services.ops.dlq import Replayer, read_dead_letters
from services.ops.groups import describe_group
from switchboard.codec import default_codec
from switchboard.jobs import new_command
from switchboard.kafka import make_admin, make_consumer, make_producer
from switchboard.settings import Settings


def _alert(tenant_id: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": f"alert-{uuid.uuid4().hex[:8]}",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": None,
        "device_id": None,
        "summary": "bench",
        "details": None,
        "labels": {},
        "occurred_at": datetime.now(UTC),
        "source": "bench",
    }


def _fill(settings: Settings, topic: str, count: int) -> None:
    codec = default_codec()
    producer = make_producer(settings)
    tenant = str(uuid.uuid4())
    for index in range(count):
        channel = str(uuid.uuid4())
        command = new_command(_alert(tenant), channel, "webhook", None)
        headers = [
            ("switchboard.reason", "http_4xx"),
            ("switchboard.final", "permanent"),
        ]
        producer.produce(
            topic, codec.encode("DeliveryCommand", command), channel, headers=headers
        )
        if index % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def _timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"{label:<34} {time.perf_counter() - started:8.3f} s")
    return result


def main() -> None:
    """Fill a private dead-letter topic, then time the three operations."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--dead-letters", type=int, default=5000)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    admin = make_admin(settings)
    topic = f"bench.ops.dlq.{uuid.uuid4().hex[:8]}"
    group = f"bench.ops.{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, args.partitions)])[topic].result(30)
    try:
        _fill(settings, topic, args.dead_letters)
        consumer = make_consumer(settings, group)
        half = args.dead_letters // (2 * args.partitions)
        consumer.commit(
            offsets=[TopicPartition(topic, p, half) for p in range(args.partitions)],
            asynchronous=False,
        )
        consumer.close()
        letters = _timed(
            f"dlq list ({args.dead_letters} letters)",
            lambda: read_dead_letters(settings, topic, default_codec()),
        )
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            replayer = Replayer(conn, make_producer(settings), default_codec())
            _timed(
                "dlq replay --all --dry-run",
                lambda: replayer.run(letters, dry_run=True),
            )
        detail = _timed("groups describe", lambda: describe_group(admin, group))
        print(f"lag reported: {sum(p.lag for p in detail.partitions)}")
    finally:
        admin.delete_consumer_groups([group])[group].result(30)
        admin.delete_topics([topic])[topic].result(30)


if __name__ == "__main__":
    main()
