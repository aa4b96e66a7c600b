"""After the cutover, a running router delivers alerts where the old routes did.

End to end: the cutover plans, applies, applies again (writing nothing) and
drops the old tables; the API's outbox relay publishes what it wrote to a
private config topic; a real router reads that topic and routes a grid of alert
events from a private alerts topic. The delivery commands it commits name, per
event, the channels reached; mapped back to old integrations they must be
exactly what the old routes selected.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from cutover_fixture import Legacy
from cutover_reference import SKIPPED, events, old_selection, rows

from services.api.relay import OutboxRelay
from services.cutover.run import run_cutover
from services.router.app import Router, RouterOptions, RouterTopics
from switchboard.codec import Codec
from switchboard.kafka import make_producer
from switchboard.settings import Settings

CONVERTED_TYPES = ("webhook", "snmp", "email", "mqtt")
PARTITIONS = 2
WAIT_S = 60.0


@dataclass(frozen=True)
class Topics:
    """A private set of router topics and the config topic the relay fills."""

    router: RouterTopics
    all: tuple[str, ...]


@pytest.fixture
def topics(admin: AdminClient, unique: str) -> Iterator[Topics]:
    base = f"test.cutover.{unique}"
    router = RouterTopics(
        alerts=f"{base}.alerts",
        jobs=f"{base}.jobs",
        dlq=f"{base}.dlq",
        throttle=f"{base}.throttle",
        config=f"{base}.config",
        delivery_prefix=f"{base}.delivery.",
    )
    compact = {"cleanup.policy": "compact"}
    new = [
        NewTopic(router.alerts, num_partitions=PARTITIONS),
        NewTopic(router.throttle, num_partitions=PARTITIONS, config=compact),
        NewTopic(router.jobs, num_partitions=1),
        NewTopic(router.dlq, num_partitions=1),
        NewTopic(router.config, num_partitions=1, config=compact),
    ] + [NewTopic(router.delivery(t), num_partitions=1) for t in CONVERTED_TYPES]
    for future in admin.create_topics(new).values():
        future.result(30)
    names = tuple(topic.topic for topic in new)
    yield Topics(router, names)
    admin.delete_topics(list(names), operation_timeout=30)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


def relay_outbox(settings: Settings, topic: str, jobs_topic: str) -> int:
    """Publish every unpublished outbox row with the API's relay; how many."""
    relay = OutboxRelay(settings, topic=topic, jobs_topic=jobs_topic)
    published = 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while count := relay.publish_batch(conn):
            published += count
    return published


def alert_events(legacy: Legacy) -> list[dict]:
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        {
            **event,
            "event_id": str(uuid.uuid4()),
            "alert_id": f"a-{index}",
            "summary": "cutover check",
            "details": None,
            "labels": {},
            "occurred_at": now,
            "source": "tests",
        }
        for index, event in enumerate(events(legacy))
    ]


def send(settings: Settings, codec: Codec, topic: str, alerts: list[dict]) -> None:
    producer = make_producer(settings)
    for alert in alerts:
        key = f"{alert['tenant_id']}/{alert['alert_id']}"
        producer.produce(topic, codec.encode("AlertEvent", alert), key)
    assert producer.flush(30.0) == 0


def committed_through(settings: Settings, group: str, topic: str) -> bool:
    probe = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        refs = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = [probe.get_watermark_offsets(ref, timeout=30)[1] for ref in refs]
        committed = probe.committed(refs, timeout=30)
        return all(c.offset >= end for c, end in zip(committed, ends, strict=True))
    finally:
        probe.close()


def commands(settings: Settings, codec: Codec, topics: list[str]) -> list[dict]:
    reader = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test.cutover.reader.{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    found = []
    try:
        for topic in topics:
            ref = TopicPartition(topic, 0)
            end = reader.get_watermark_offsets(ref, timeout=30)[1]
            reader.assign([TopicPartition(topic, 0, 0)])
            while reader.position([ref])[0].offset < end:
                for message in reader.consume(1000, timeout=0.5):
                    if message.error() is None:
                        found.append(codec.decode("DeliveryCommand", message.value()))
    finally:
        reader.close()
    return found


def test_a_running_router_reaches_what_the_old_routes_selected(
    legacy: Legacy,
    cutover_settings: Settings,
    codec: Codec,
    topics: Topics,
    unique: str,
) -> None:
    skip = [legacy.id(role) for role in SKIPPED]
    planned = run_cutover(cutover_settings)
    assert planned.applied is None and len(planned.plan.new_rules) == 9
    run_cutover(cutover_settings, apply=True, with_history=True)
    again = run_cutover(cutover_settings, apply=True, with_history=True)
    assert again.applied is not None and again.applied.nothing
    result = run_cutover(cutover_settings, drop=True, skip=skip)
    assert result.dropped is not None
    # 16 configuration changes, and the 9 job events of the copied history.
    published = relay_outbox(cutover_settings, topics.router.config, topics.router.jobs)
    assert published == 16 + 9

    alerts = alert_events(legacy)
    options = RouterOptions(
        transactional_id=f"test.cutover.{unique}",
        group_id=f"test.cutover.{unique}",
        batch_timeout_s=0.02,
    )
    router = Router(cutover_settings, topics.router, options, codec)
    stop = threading.Event()
    thread = threading.Thread(target=router.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(router.ready.is_set, "router ready")
        send(cutover_settings, codec, topics.router.alerts, alerts)
        wait_for(
            lambda: committed_through(
                cutover_settings, options.group_id, topics.router.alerts
            ),
            "router to route",
        )
    finally:
        stop.set()
        thread.join(60.0)

    delivered = commands(
        cutover_settings, codec, [topics.router.delivery(t) for t in CONVERTED_TYPES]
    )
    origin = {
        str(row["id"]): str(row["legacy_integration_id"])
        for row in rows(
            legacy.url, "SELECT id, legacy_integration_id FROM notification_channels"
        )
    }
    reached: dict[str, set[str]] = {alert["event_id"]: set() for alert in alerts}
    for command in delivered:
        reached[command["alert"]["event_id"]].add(origin[command["channel_id"]])
    skipped = {legacy.id(role) for role in SKIPPED}
    for alert in alerts:
        assert reached[alert["event_id"]] == old_selection(legacy, alert, skipped), (
            alert
        )
    assert len(delivered) > len(alerts) // 2
