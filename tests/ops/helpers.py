"""Builders and topic readers for the operator tools' tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from services.deliverer.pipeline import (
    HEADER_ATTEMPT,
    HEADER_ERROR,
    HEADER_FINAL,
    HEADER_REASON,
)
from switchboard.codec import Codec
from switchboard.config_cache import ChannelRecord, channel_key, encode_channel_event
from switchboard.jobs import new_command
from switchboard.kafka import make_consumer, make_producer
from switchboard.secrets import SecretBox
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC

WAIT_S = 30.0


def make_alert(tenant_id: str) -> dict[str, Any]:
    """An AlertEvent as the codec decodes it."""
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": f"alert-{uuid.uuid4().hex[:8]}",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": "site-1",
        "device_id": "router-7",
        "summary": "Link down on router-7",
        "details": None,
        "labels": {"region": "eu-west"},
        "occurred_at": datetime(2026, 12, 3, 19, 0, tzinfo=UTC),
        "source": "netmon",
    }


def make_command(tenant_id: str, channel_id: str, attempt: int = 1) -> dict[str, Any]:
    """A webhook DeliveryCommand of a new job at ``attempt``."""
    command = new_command(make_alert(tenant_id), channel_id, "webhook", None)
    return {**command, "attempt": attempt}


def dead_letter_headers(reason: str, attempt: int) -> list[tuple[str, str]]:
    """Headers as the deliverer writes them on a dead letter."""
    return [
        (HEADER_REASON, reason),
        (HEADER_FINAL, "permanent"),
        (HEADER_ERROR, f"HTTP 400 from target ({reason})"),
        (HEADER_ATTEMPT, str(attempt)),
    ]


def produce(
    settings: Settings,
    topic: str,
    messages: list[tuple[str | None, bytes | None, list[tuple[str, str]] | None]],
    partition: int | None = None,
    timestamp_ms: int | None = None,
) -> None:
    """Produce (key, value, headers) messages and wait for every ack."""
    producer = make_producer(settings)
    extra: dict[str, Any] = {}
    if partition is not None:
        extra["partition"] = partition
    if timestamp_ms is not None:
        extra["timestamp"] = timestamp_ms
    for key, value, headers in messages:
        producer.produce(topic, value, key, headers=headers, **extra)
    assert producer.flush(WAIT_S) == 0


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Every partition's end offset now."""
    consumer = make_consumer(settings, f"test.ops.ends.{uuid.uuid4().hex[:8]}")
    try:
        metadata = consumer.list_topics(topic, timeout=WAIT_S).topics[topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=WAIT_S)[
                1
            ]
            for p in metadata.partitions
        }
    finally:
        consumer.close()


def read_since(settings: Settings, topic: str, starts: dict[int, int]) -> list[Message]:
    """Every message from ``starts`` up to each partition's end now."""
    ends = end_offsets(settings, topic)
    wanted = {p: ends[p] for p in ends if ends[p] > starts.get(p, 0)}
    consumer = make_consumer(settings, f"test.ops.reader.{uuid.uuid4().hex[:8]}")
    consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p in wanted])
    found: list[Message] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while wanted and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is not None:
                    continue
                found.append(message)
                if message.offset() + 1 >= wanted.get(message.partition(), 0):
                    wanted.pop(message.partition(), None)
        assert not wanted, f"partitions not read to their end: {wanted}"
        return found
    finally:
        consumer.close()


def decoded(codec: Codec, schema: str, messages: list[Message]) -> list[dict]:
    """Decode messages with ``schema``, skipping others' experiments."""
    records = []
    for message in messages:
        try:
            records.append(codec.decode(schema, message.value() or b""))
        except Exception:
            continue
    return records


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll ``condition`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def committed(admin: AdminClient, group: str) -> dict[tuple[str, int], int | None]:
    """A group's committed offsets, as the admin API reports them."""
    from switchboard.lag import committed_offsets

    return committed_offsets(admin, group)


def joined_consumer(settings: Settings, group: str, topic: str, client_id: str):
    """A consumer subscribed to ``topic`` that has received its assignment."""
    consumer: Consumer = make_consumer(settings, group, **{"client.id": client_id})
    consumer.subscribe([topic])

    def assigned() -> list[TopicPartition]:
        consumer.poll(0.2)
        return consumer.assignment()

    wait_for(assigned, "the consumer's assignment")
    return consumer


def publish_webhook_channel(
    settings: Settings, codec: Codec, tenant_id: str, url: str, signing_secret: str
) -> str:
    """Publish a webhook channel straight to notify.config; its id."""
    channel_id = str(uuid.uuid4())
    record = ChannelRecord(
        id=channel_id,
        tenant_id=tenant_id,
        name="ops replay test",
        channel_type="webhook",
        enabled=True,
        config_json=json.dumps({"url": url}),
        secrets_encrypted=SecretBox.from_settings(settings).encrypt(
            {"signing_secret": signing_secret}
        ),
    )
    value = encode_channel_event(codec, record, 0)
    produce(settings, CONFIG_TOPIC, [(channel_key(channel_id), value, None)])
    return channel_id
