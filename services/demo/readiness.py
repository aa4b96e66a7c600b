"""Waiting until a freshly started broker serves the topics just created."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition

from switchboard.settings import Settings
from switchboard.topics import topic_specs

LEADER_WAIT_S = 30.0
RETRY_S = 0.2


def wait_for_partition_leaders(settings: Settings) -> None:
    """Wait until every topic of the design answers offset requests.

    Right after a broker starts or a topic is created, a partition may answer
    NOT_LEADER for a moment, and the services treat an error while loading
    notify.config at start as fatal; so the demo and the tests wait first.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"switchboard.readiness.{uuid.uuid4().hex[:8]}",
        }
    )
    deadline = time.monotonic() + LEADER_WAIT_S
    try:
        for spec in topic_specs(settings):
            metadata = consumer.list_topics(spec.name, timeout=10)
            for partition in metadata.topics[spec.name].partitions:
                _offsets_answer(
                    consumer, TopicPartition(spec.name, partition), deadline
                )
    finally:
        consumer.close()


def _offsets_answer(
    consumer: Consumer, partition: TopicPartition, deadline: float
) -> None:
    while True:
        try:
            consumer.get_watermark_offsets(partition, timeout=5)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(RETRY_S)
