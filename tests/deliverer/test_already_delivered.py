"""A command whose job the recorder already holds as delivered is not sent again."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from services.recorder.service import Recorder
from switchboard.kafka import make_producer
from tests.deliverer.helpers import (
    JobEvents,
    make_command,
    produce_commands,
    publish_webhook_channel,
    states_of,
)


def _record_until_delivered(settings, topic: str, conn, job_id: str) -> None:
    recorder = Recorder(settings, topic=topic, group=f"test.recorder.{uuid.uuid4()}")
    try:
        for _ in range(300):
            recorder.step()
            row = conn.execute(
                "SELECT state FROM notification_jobs WHERE job_id = %s", (job_id,)
            ).fetchone()
            if row and row[0] == "delivered":
                return
        raise AssertionError("the recorder never recorded the delivery")
    finally:
        recorder.close()


def _produce_at(settings, codec, topic: str, command: dict) -> tuple[int, int]:
    """Produce one command; return its (partition, offset)."""
    where: list = []
    producer = make_producer(settings)
    producer.produce(
        topic,
        codec.encode("DeliveryCommand", command),
        command["channel_id"],
        on_delivery=lambda error, message: where.append(
            (message.partition(), message.offset())
        ),
    )
    assert producer.flush(30) == 0
    return where[0]


def _wait_committed_past(settings, group: str, topic: str, partition: int, offset: int):
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": group}
    )
    try:
        for _ in range(300):
            [committed] = consumer.committed([TopicPartition(topic, partition)], 10)
            if committed.offset > offset:
                return
            time.sleep(0.1)
        raise AssertionError("the duplicate's offset was never committed")
    finally:
        consumer.close()


def test_a_delivered_job_is_not_sent_again(
    settings, codec, harness, receiver, conn
) -> None:
    deliverer = harness(partitions=1)
    tenant = str(uuid.uuid4())
    channel = publish_webhook_channel(settings, codec, tenant, receiver.url())
    command = make_command(tenant, channel)
    produce_commands(settings, codec, deliverer.topics.main, [command])
    receiver.wait_for(1)
    _record_until_delivered(settings, deliverer.jobs_topic, conn, command["job_id"])

    partition, offset = _produce_at(settings, codec, deliverer.topics.main, command)
    marker = make_command(tenant, channel)
    produce_commands(settings, codec, deliverer.topics.main, [marker])
    JobEvents(settings, codec, deliverer.jobs_topic).wait(
        lambda events: ("delivered", 1) in states_of(events, marker["job_id"])
    )
    _wait_committed_past(
        settings, deliverer.topics.group, deliverer.topics.main, partition, offset
    )

    sent = [r.webhook_id for r in receiver.received()]
    assert sent.count(command["job_id"]) == 1
    assert marker["job_id"] in sent
