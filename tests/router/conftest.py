"""Fixtures for router tests: private topics, config publishing, a running router.

Each test gets its own alerts, throttle, jobs, dead-letter and delivery topics, so
routers of different tests never see each other's output. Rules and channels go
to the shared ``notify.config`` under ids unique to the test.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.router.app import Router, RouterOptions, RouterTopics
from switchboard.codec import Codec
from switchboard.config_cache import (
    ChannelRecord,
    RuleRecord,
    channel_key,
    encode_channel_event,
    encode_rule_event,
    rule_key,
)
from switchboard.kafka import make_producer
from switchboard.settings import Settings
from switchboard.topics import CHANNEL_TYPES, CONFIG_TOPIC

ALERT_PARTITIONS = 3
WAIT_S = 60.0


def make_alert(tenant_id: str, alert_id: str, **fields: Any) -> dict[str, Any]:
    """An AlertEvent (v2) with defaults that any test can override."""
    alert: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": alert_id,
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": None,
        "device_id": None,
        "summary": "link down",
        "details": None,
        "labels": {},
        "occurred_at": datetime.now(UTC).replace(microsecond=0),
        "source": "tests",
    }
    alert.update(fields)
    return alert


def wait_for(
    condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S
) -> None:
    """Wait until ``condition()`` holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@dataclass
class RouterWorld:
    """A test's topics, tenant and producer, with helpers to feed and read them."""

    settings: Settings
    codec: Codec
    topics: RouterTopics
    tenant_id: str
    unique: str
    producer: Producer

    def channel(self, channel_type: str = "webhook", **fields: Any) -> ChannelRecord:
        """Publish a channel of this test's tenant and return it."""
        values: dict[str, Any] = {
            "id": f"ch-{uuid.uuid4().hex[:12]}",
            "tenant_id": self.tenant_id,
            "name": "test channel",
            "channel_type": channel_type,
            "enabled": True,
            "config_json": "{}",
            "secrets_encrypted": None,
        }
        values.update(fields)
        channel = ChannelRecord(**values)
        self.publish_channel(channel)
        return channel

    def publish_channel(self, channel: ChannelRecord) -> None:
        """Publish (or republish) a channel to notify.config."""
        value = encode_channel_event(self.codec, channel, 1)
        self._publish(channel_key(channel.id), value)

    def rule(self, channel: ChannelRecord, **fields: Any) -> RuleRecord:
        """Publish a rule of this test's tenant pointing at ``channel``."""
        values: dict[str, Any] = {
            "id": f"rule-{uuid.uuid4().hex[:12]}",
            "tenant_id": self.tenant_id,
            "channel_id": channel.id,
            "name": "test rule",
            "priority": 10,
        }
        values.update(fields)
        rule = RuleRecord(**values)
        self.publish_rule(rule)
        return rule

    def publish_rule(self, rule: RuleRecord) -> None:
        """Publish (or republish) a rule to notify.config."""
        self._publish(rule_key(rule.id), encode_rule_event(self.codec, rule, 1))

    def delete_rule(self, rule: RuleRecord) -> None:
        """Publish a tombstone for a rule."""
        self._publish(rule_key(rule.id), None)

    def _publish(self, key: str, value: bytes | None) -> None:
        self.producer.produce(CONFIG_TOPIC, value, key)
        self.producer.flush(30.0)

    def send(self, *alerts: dict[str, Any]) -> None:
        """Produce alert events to this test's alerts topic."""
        for alert in alerts:
            value = self.codec.encode("AlertEvent", alert)
            self.send_raw(f"{alert['tenant_id']}/{alert['alert_id']}", value)
        self.producer.flush(30.0)

    def send_raw(self, key: str, value: bytes, headers: list | None = None) -> None:
        """Produce raw bytes to the alerts topic (flush is the caller's)."""
        self.producer.produce(self.topics.alerts, value, key, headers=headers)

    def alert(self, alert_id: str, **fields: Any) -> dict[str, Any]:
        """An AlertEvent of this test's tenant (see :func:`make_alert`)."""
        return make_alert(self.tenant_id, alert_id, **fields)

    def running(self, **options: Any) -> Any:
        """A router over this test's topics, running until the block ends."""
        return running_router(self, **options)

    @staticmethod
    def wait_for(condition: Callable[[], bool], what: str) -> None:
        """Wait until ``condition()`` holds (see :func:`wait_for`)."""
        wait_for(condition, what)

    def wait_consumed(self) -> None:
        """Wait until the router group committed everything sent to the alerts topic.

        Outputs are committed in the same transaction as the offsets, so after
        this every decision about the events sent so far is readable.
        """
        probe = Consumer(
            {"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": self.group}
        )
        try:
            refs = [
                TopicPartition(self.topics.alerts, p) for p in range(ALERT_PARTITIONS)
            ]
            ends = [probe.get_watermark_offsets(ref, timeout=30)[1] for ref in refs]

            def caught_up() -> bool:
                committed = probe.committed(refs, timeout=30)
                return all(
                    end == 0 or c.offset >= end
                    for c, end in zip(committed, ends, strict=True)
                )

            wait_for(caught_up, "router to commit its input offsets")
        finally:
            probe.close()

    @property
    def group(self) -> str:
        """The router consumer group of this test."""
        return f"test.router.{self.unique}"

    def options(self, **fields: Any) -> RouterOptions:
        """Router options with a group and transactional id unique to this test."""
        values: dict[str, Any] = {
            "transactional_id": f"test.router.{self.unique}.{uuid.uuid4().hex[:6]}",
            "group_id": self.group,
            "batch_timeout_s": 0.02,
        }
        values.update(fields)
        return RouterOptions(**values)


class TopicReader:
    """A read-committed reader of whole topics, from the beginning."""

    def __init__(self, settings: Settings) -> None:
        """A consumer outside any group."""
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"test.router.reader.{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )

    def read(self, topic: str, at_least: int = 0, timeout_s: float = WAIT_S) -> list:
        """Every committed message of ``topic``, once ``at_least`` are there.

        Reads to the end of every partition, so a test sees duplicates too.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            messages = self._read_to_end(topic, deadline)
            if len(messages) >= at_least or time.monotonic() > deadline:
                return messages
            time.sleep(0.2)

    def _read_to_end(self, topic: str, deadline: float) -> list:
        metadata = self._consumer.list_topics(topic, timeout=30).topics[topic]
        refs = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        ends = [
            self._consumer.get_watermark_offsets(ref, timeout=30)[1] for ref in refs
        ]
        self._consumer.assign([TopicPartition(topic, r.partition, 0) for r in refs])
        messages = []
        try:
            while time.monotonic() < deadline:
                positions = self._consumer.position(refs)
                if all(
                    end == 0 or p.offset >= end
                    for p, end in zip(positions, ends, strict=True)
                ):
                    break
                for message in self._consumer.consume(1000, timeout=0.2):
                    if message.error() is None:
                        messages.append(message)
        finally:
            self._consumer.unassign()
        return messages

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()


@pytest.fixture
def reader(settings: Settings) -> Iterator[TopicReader]:
    """A read-committed topic reader."""
    topic_reader = TopicReader(settings)
    yield topic_reader
    topic_reader.close()


@pytest.fixture
def router_topics(admin: AdminClient, unique: str) -> Iterator[RouterTopics]:
    """Private topics for one router test (alerts and throttle co-partitioned)."""
    base = f"test.router.{unique}"
    topics = RouterTopics(
        alerts=f"{base}.alerts",
        jobs=f"{base}.jobs",
        dlq=f"{base}.dlq",
        throttle=f"{base}.throttle",
        delivery_prefix=f"{base}.delivery.",
    )
    new = [
        NewTopic(topics.alerts, num_partitions=ALERT_PARTITIONS),
        NewTopic(
            topics.throttle,
            num_partitions=ALERT_PARTITIONS,
            config={"cleanup.policy": "compact"},
        ),
        NewTopic(topics.jobs, num_partitions=ALERT_PARTITIONS),
        NewTopic(topics.dlq, num_partitions=1),
    ] + [NewTopic(topics.delivery(t), num_partitions=1) for t in CHANNEL_TYPES]
    for future in admin.create_topics(new).values():
        future.result(30)
    yield topics
    futures = admin.delete_topics([topic.topic for topic in new], operation_timeout=30)
    for future in futures.values():
        future.result(60)


@pytest.fixture
def world(
    settings: Settings, codec: Codec, router_topics: RouterTopics, unique: str
) -> Iterator[RouterWorld]:
    """The test's topics, a tenant of its own and a producer."""
    producer = make_producer(settings)
    yield RouterWorld(
        settings, codec, router_topics, f"tenant-{unique}", unique, producer
    )
    producer.flush(30.0)


@contextmanager
def running_router(world: RouterWorld, **options: Any) -> Iterator[Router]:
    """Run a router in a thread until the block ends."""
    router = Router(world.settings, world.topics, world.options(**options), world.codec)
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            router.run(stop)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=run, name="router", daemon=True)
    thread.start()
    wait_for(lambda: router.ready.is_set() or bool(failures), "router ready")
    try:
        yield router
    finally:
        stop.set()
        thread.join(60.0)
    if failures:
        raise failures[0]
