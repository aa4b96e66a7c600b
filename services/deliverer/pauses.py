"""Pausing a consumer's partitions while it keeps polling, for two reasons.

A consumer that stops calling ``consume`` for longer than
``max.poll.interval.ms`` is evicted from its group: its partitions go to
another member, offsets of work in flight are lost and that work is done twice.
So a deliverer never waits by not polling. It pauses partitions instead:

- :class:`RetryGate` holds a retry partition whose head message is not due yet
  (pause, seek back to it, resume when due);
- :class:`Throttle` holds partitions whose next messages could only wait in
  memory: every partition while the process holds all its bound allows. One
  busy channel never pauses a partition, which the other channels on it share:
  its commands wait in memory or are deferred (see
  :mod:`services.deliverer.consumer`).

A partition can be paused for both reasons at once; it is resumed only when
neither holds it any more. Pausing drops messages librdkafka fetched ahead, and
resuming fetches again from the position after the last message consumed, so
nothing is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)

PartitionKey = tuple[str, int]


class RetryGate:
    """Holds back retry partitions whose head message is not due yet."""

    def __init__(self, consumer: Consumer) -> None:
        """Pause and resume partitions of ``consumer``."""
        self._consumer = consumer
        self._held: dict[PartitionKey, float] = {}
        self._unsought: dict[PartitionKey, TopicPartition] = {}

    def is_held(self, message: Message) -> bool:
        """Whether the message's partition is held (the message will come again)."""
        return self.holds((message.topic(), message.partition()))

    def holds(self, key: PartitionKey) -> bool:
        """Whether the partition ``key`` is held."""
        return key in self._held

    def hold(self, message: Message, due: datetime) -> None:
        """Pause the message's partition and rewind it to the message."""
        position = TopicPartition(
            message.topic(), message.partition(), message.offset()
        )
        self._consumer.pause([position])
        key = (message.topic(), message.partition())
        self._held[key] = due.timestamp()
        self._unsought[key] = position
        self._seek(key)

    def release_due(self, keep_paused: Collection[PartitionKey] = ()) -> None:
        """Release every held partition whose head is due now and is rewound.

        Partitions in ``keep_paused`` are paused for another reason too: they
        are released from the gate but stay paused until that reason ends.
        """
        now = time.time()
        due = [
            key for key, due_s in self._held.items() if due_s <= now and self._seek(key)
        ]
        resumable = [key for key in due if key not in keep_paused]
        if resumable:
            self._consumer.resume([TopicPartition(t, p) for t, p in resumable])
        for key in due:
            del self._held[key]

    def _seek(self, key: PartitionKey) -> bool:
        # Resuming without the rewind would skip the held message and let later
        # offsets be stored past it, so a failed seek is retried until it works.
        position = self._unsought.get(key)
        if position is None:
            return True
        try:
            self._consumer.seek(position)
        except KafkaException as error:
            log.warning(
                "seek back failed; partition stays held",
                extra={"topic": key[0], "partition": key[1], "error": str(error)},
            )
            return False
        del self._unsought[key]
        return True

    def forget(self, partitions: Iterable[PartitionKey]) -> None:
        """Drop revoked partitions."""
        for key in partitions:
            self._held.pop(key, None)
            self._unsought.pop(key, None)


class Throttle:
    """Keeps paused exactly the partitions it is told to, minus what the gate holds.

    Messages already consumed stay in memory and are started later, so a
    throttled partition needs no seek: resuming continues after them.
    """

    def __init__(self, consumer: Consumer, gate: RetryGate | None) -> None:
        """Pause and resume partitions of ``consumer``, deferring to ``gate``."""
        self._consumer = consumer
        self._gate = gate
        self._paused: set[PartitionKey] = set()

    @property
    def paused(self) -> frozenset[PartitionKey]:
        """The partitions the throttle holds paused."""
        return frozenset(self._paused)

    def hold_only(self, wanted: set[PartitionKey]) -> None:
        """Pause the ``wanted`` partitions and resume the others it paused."""
        added = wanted - self._paused
        removed = self._paused - wanted
        if added and self._apply(self._consumer.pause, added):
            self._paused |= added
            log.debug("partitions paused", extra={"count": len(added)})
        # A partition the retry gate holds stays paused; the gate resumes it.
        resumable = {
            key for key in removed if self._gate is None or not self._gate.holds(key)
        }
        if resumable and not self._apply(self._consumer.resume, resumable):
            return
        self._paused -= removed
        if resumable:
            log.debug("partitions resumed", extra={"count": len(resumable)})

    def forget(self, partitions: Iterable[PartitionKey]) -> None:
        """Drop revoked partitions (a new assignment starts unpaused)."""
        self._paused.difference_update(partitions)

    def _apply(
        self, action: Callable[[list[TopicPartition]], None], keys: set[PartitionKey]
    ) -> bool:
        # Both calls only fail for partitions no longer assigned, which a
        # rebalance is about to report; the next round tries again.
        try:
            action([TopicPartition(topic, p) for topic, p in keys])
        except KafkaException as error:
            log.warning("pause or resume failed", extra={"error": str(error)})
            return False
        return True
