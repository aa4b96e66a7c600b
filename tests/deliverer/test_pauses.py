"""The retry gate and the throttle pausing partitions of one real consumer.

A partition is paused for either reason and resumed only when neither holds
it: the throttle letting go must not resume a partition the gate holds, and the
gate letting go must not resume a partition the throttle holds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Message

from services.deliverer.pauses import RetryGate, Throttle
from switchboard.kafka import make_consumer, make_producer

PER_PARTITION = 5
HOLD_S = 1.0
# Long enough for a resumed partition to be fetched again (about half a second
# on a quiet broker), so that seeing nothing means it stayed paused.
QUIET_S = 2.5


@pytest.fixture
def consumer(settings, make_topic) -> Iterator[tuple[Consumer, str]]:
    """A group consumer of a new two-partition topic holding PER_PARTITION each."""
    topic = make_topic("pauses", partitions=2)
    producer = make_producer(settings)
    for partition in (0, 1):
        for n in range(PER_PARTITION):
            producer.produce(topic, f"{partition}-{n}".encode(), partition=partition)
    assert producer.flush(30) == 0
    consumer = make_consumer(
        settings, f"test.pauses.{uuid.uuid4()}", **{"fetch.wait.max.ms": 50}
    )
    consumer.subscribe([topic])
    yield consumer, topic
    consumer.close()


def _consume(
    consumer: Consumer, seconds: float, enough: int | None = None
) -> list[Message]:
    """What arrives within ``seconds``, or once ``enough`` messages did."""
    deadline = time.monotonic() + seconds
    messages: list[Message] = []
    while time.monotonic() < deadline and (enough is None or len(messages) < enough):
        messages += [m for m in consumer.consume(100, 0.1) if m.error() is None]
    return messages


def _first_of(consumer: Consumer, partition: int) -> Message:
    """The first message consumed from ``partition``."""
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        for message in consumer.consume(100, 0.1):
            if message.error() is None and message.partition() == partition:
                return message
    raise AssertionError(f"nothing consumed from partition {partition}")


def _offsets(messages: list[Message], partition: int) -> list[int]:
    return [m.offset() for m in messages if m.partition() == partition]


def test_the_throttle_letting_go_leaves_a_held_partition_held(consumer) -> None:
    kafka, topic = consumer
    gate = RetryGate(kafka)
    throttle = Throttle(kafka, gate)
    head = _first_of(kafka, 0)
    gate.hold(head, datetime.now(UTC) + timedelta(seconds=HOLD_S))

    throttle.hold_only({(topic, 0), (topic, 1)})
    throttle.hold_only(set())
    while_held = _consume(kafka, QUIET_S)

    assert _offsets(while_held, 0) == []
    time.sleep(HOLD_S)
    gate.release_due(keep_paused=throttle.paused)
    assert _offsets(_consume(kafka, 30.0, PER_PARTITION), 0) == list(
        range(PER_PARTITION)
    )


def test_the_gate_letting_go_leaves_a_throttled_partition_paused(consumer) -> None:
    kafka, topic = consumer
    gate = RetryGate(kafka)
    throttle = Throttle(kafka, gate)
    head = _first_of(kafka, 0)
    gate.hold(head, datetime.now(UTC) + timedelta(seconds=HOLD_S / 2))
    throttle.hold_only({(topic, 0), (topic, 1)})

    time.sleep(HOLD_S)
    gate.release_due(keep_paused=throttle.paused)
    while_throttled = _consume(kafka, QUIET_S)

    assert _offsets(while_throttled, 0) == []
    throttle.hold_only(set())
    assert _offsets(_consume(kafka, 30.0, PER_PARTITION), 0) == list(
        range(PER_PARTITION)
    )
