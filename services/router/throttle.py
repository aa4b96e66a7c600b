"""Throttle windows per (rule, alert, event kind), kept in a compacted changelog.

A rule with ``throttle_minutes`` suppresses a repeat of the same kind of event
for the same alert inside the window that starts when the router last sent
one. Windows are measured in event time (``occurred_at``), so reprocessing a
batch after an aborted transaction makes exactly the same decisions. Keying by
event kind means a CLOSED is only ever suppressed by an earlier CLOSED, and a
follow-up (ACKNOWLEDGED or CLOSED) is never suppressed when an OPEN of the alert
was sent after the last sent follow-up of its kind: an alert that opened again
at the receiver always gets its acknowledgement and resolution through.

The state of alerts partition N lives in partition N of ``notify.router.throttle``
(key ``<rule_id>/<kind>/<tenant_id>/<alert_id>``, value the last-sent time in
epoch milliseconds as ASCII digits, or a tombstone once the window has passed).
The router writes those records in the same transaction as the commands they
stand for and reads a partition back whenever it is assigned, so a restart or a
rebalance neither forgets a window nor remembers a send that was aborted.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from switchboard.kafka import client_logging
from switchboard.settings import Settings

log = logging.getLogger(__name__)

MS_PER_MINUTE = 60_000
# Kinds that act on an incident an OPEN started at the receiver.
FOLLOW_UP_KINDS = frozenset({"ACKNOWLEDGED", "CLOSED"})
RESTORE_BATCH = 1000
RESTORE_POLL_S = 0.05
RESTORE_FETCH_WAIT_MS = 10


def throttle_key(rule_id: str, kind: str, tenant_id: str, alert_id: str) -> str:
    """The changelog key of one (rule, event kind, alert) window."""
    return f"{rule_id}/{kind}/{tenant_id}/{alert_id}"


def rule_of_key(key: str) -> str:
    """The rule id a throttle key belongs to."""
    return key.split("/", 1)[0]


def encode_sent_at(sent_at_ms: int) -> bytes:
    """The changelog value of a window that started at ``sent_at_ms``."""
    return str(sent_at_ms).encode("ascii")


def decode_sent_at(value: bytes) -> int | None:
    """The start of a window from a changelog value; None if unreadable."""
    try:
        return int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


Layer = dict[str, int | None]


@dataclass
class PartitionWindows:
    """Throttle windows of one alerts partition: committed, then one layer per batch.

    A layer holds the changes (window starts, or None for an ended window) of
    one batch whose transaction has not committed yet, oldest first.
    """

    committed: dict[str, int] = field(default_factory=dict)
    layers: list[tuple[int, Layer]] = field(default_factory=list)
    newest_event_ms: int = 0

    def sent_at(self, key: str) -> int | None:
        """When the window of ``key`` started, counting uncommitted batches."""
        for _batch, layer in reversed(self.layers):
            if key in layer:
                return layer[key]
        return self.committed.get(key)

    def pending(self, key: str) -> bool:
        """Whether an uncommitted batch changes ``key``."""
        return any(key in layer for _batch, layer in self.layers)

    def layer(self, batch: int) -> Layer:
        """The changes of ``batch``, created on first use."""
        if not self.layers or self.layers[-1][0] != batch:
            self.layers.append((batch, {}))
        return self.layers[-1][1]

    def fold(self, batch: int) -> None:
        """Make the changes of ``batch`` (the oldest layer, if any) committed."""
        if not self.layers or self.layers[0][0] != batch:
            return
        _batch, layer = self.layers.pop(0)
        for key, sent_at in layer.items():
            if sent_at is None:
                self.committed.pop(key, None)
            else:
                self.committed[key] = sent_at


def _opened_since(
    windows: PartitionWindows, opened_key: str | None, sent_at: int
) -> bool:
    if opened_key is None:
        return False
    opened_at = windows.sent_at(opened_key)
    return opened_at is not None and opened_at >= sent_at


class ThrottleState:
    """Windows of every assigned partition, changed batch by batch like a transaction.

    :meth:`begin_batch` opens a batch; its changes stay in their own layer
    until :meth:`commit` folds in the oldest open batch once the Kafka
    transaction that carried it committed. Decisions see every open batch, so
    a batch prepared while the previous one commits builds on it;
    :meth:`rollback` forgets every open batch when a transaction aborted.
    """

    def __init__(self) -> None:
        """No partitions yet; :meth:`load` adds them on assignment."""
        self._partitions: dict[int, PartitionWindows] = {}
        self._open: list[int] = []
        self._batch = 0
        # Newest event time per partition before the oldest open batch: an
        # aborted batch's events are routed again, so they must not have moved
        # the clock that expire() ends windows by.
        self._newest_before_open: dict[int, int] = {}

    def load(self, partition: int, windows: dict[str, int]) -> None:
        """Take over a partition with the windows read from its changelog."""
        self._partitions[partition] = PartitionWindows(committed=windows)

    def drop(self, partition: int) -> None:
        """Forget a partition that is no longer assigned."""
        self._partitions.pop(partition, None)

    def has(self, partition: int) -> bool:
        """Whether the windows of ``partition`` are loaded."""
        return partition in self._partitions

    def partitions(self) -> list[int]:
        """The partitions whose windows are loaded."""
        return sorted(self._partitions)

    def size(self) -> int:
        """Committed windows over all partitions."""
        return sum(len(p.committed) for p in self._partitions.values())

    def begin_batch(self) -> None:
        """Open a batch: changes from now on belong to it."""
        if not self._open:
            self._newest_before_open = {
                partition: windows.newest_event_ms
                for partition, windows in self._partitions.items()
            }
        self._batch += 1
        self._open.append(self._batch)

    def should_send(
        self,
        partition: int,
        key: str,
        throttle_minutes: int,
        event_ms: int,
        opened_key: str | None = None,
    ) -> bool:
        """Decide one match; a send starts a new window in the open batch.

        ``opened_key`` is the OPEN window of the same rule and alert, given for
        a follow-up: an OPEN sent since the follow-up's window started lets it
        through.
        """
        windows = self._partitions[partition]
        windows.newest_event_ms = max(windows.newest_event_ms, event_ms)
        if throttle_minutes <= 0:
            return True
        sent_at = windows.sent_at(key)
        if (
            sent_at is not None
            and event_ms - sent_at < throttle_minutes * MS_PER_MINUTE
            and not _opened_since(windows, opened_key, sent_at)
        ):
            return False
        windows.layer(self._batch)[key] = event_ms
        return True

    def expire(self, window_minutes: Callable[[str], int | None]) -> int:
        """End windows that passed (in event time) or whose rule no longer throttles.

        ``window_minutes`` gives a rule's current throttle minutes (None if the
        rule is gone). The ends are changes of the open batch; returns how many.
        """
        expired = 0
        for windows in self._partitions.values():
            for key, sent_at in windows.committed.items():
                if windows.pending(key):
                    continue
                minutes = window_minutes(rule_of_key(key))
                if (
                    not minutes
                    or windows.newest_event_ms - sent_at >= minutes * MS_PER_MINUTE
                ):
                    windows.layer(self._batch)[key] = None
                    expired += 1
        return expired

    def batch_changes(self) -> Iterator[tuple[int, str, int | None]]:
        """(partition, key, window start or None) of the newest open batch."""
        for partition, windows in self._partitions.items():
            if windows.layers and windows.layers[-1][0] == self._batch:
                for key, sent_at in windows.layers[-1][1].items():
                    yield partition, key, sent_at

    def commit(self) -> None:
        """The oldest open batch's transaction committed: its changes are durable."""
        batch = self._open.pop(0)
        for windows in self._partitions.values():
            windows.fold(batch)

    def rollback(self) -> None:
        """A transaction aborted: forget every open batch and the event times it saw."""
        self._open.clear()
        for partition, windows in self._partitions.items():
            windows.layers.clear()
            windows.newest_event_ms = self._newest_before_open.get(partition, 0)


class ChangelogReader:
    """Reads partitions of the throttle changelog back into memory."""

    def __init__(self, settings: Settings, topic: str) -> None:
        """A consumer outside any group, assigned one partition at a time."""
        self._topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                # Required by the client; this consumer never commits.
                "group.id": f"switchboard.router.throttle-restore.{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "isolation.level": "read_committed",
                # A partition ends with a transaction marker that the position
                # only passes on the next fetch; without this each partition
                # would hold a rebalance for librdkafka's default 500 ms wait.
                "fetch.wait.max.ms": RESTORE_FETCH_WAIT_MS,
                **client_logging(),
            }
        )

    def partition_count(self) -> int:
        """Partitions of the changelog topic (0 if it does not exist)."""
        metadata = self._consumer.list_topics(self._topic, timeout=30.0)
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            return 0
        return len(topic.partitions)

    def read(self, partition: int, timeout_s: float = 120.0) -> dict[str, int]:
        """Every live window of one partition, read up to its end."""
        started = time.monotonic()
        partition_ref = TopicPartition(self._topic, partition)
        _low, high = self._consumer.get_watermark_offsets(partition_ref, timeout=30.0)
        windows: dict[str, int] = {}
        if high > 0:
            self._consumer.assign(
                [TopicPartition(self._topic, partition, OFFSET_BEGINNING)]
            )
            try:
                self._read_until(partition_ref, high, windows, started + timeout_s)
            finally:
                self._consumer.unassign()
        log.info(
            "throttle windows restored",
            extra={
                "topic": self._topic,
                "partition": partition,
                "windows": len(windows),
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
        )
        return windows

    def _read_until(
        self,
        partition_ref: TopicPartition,
        high: int,
        windows: dict[str, int],
        deadline: float,
    ) -> None:
        # Transaction markers occupy offsets, so the position (not the last
        # message) tells when the end seen at the start has been reached.
        while self._consumer.position([partition_ref])[0].offset < high:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"throttle changelog {self._topic} not read to its end"
                )
            for message in self._consumer.consume(
                RESTORE_BATCH, timeout=RESTORE_POLL_S
            ):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning(
                            "throttle changelog read error", extra={"error": str(error)}
                        )
                    continue
                self._apply(message.key(), message.value(), windows)

    @staticmethod
    def _apply(key: bytes | None, value: bytes | None, windows: dict[str, int]) -> None:
        if key is None:
            return
        text = key.decode("utf-8", errors="replace")
        sent_at = decode_sent_at(value) if value is not None else None
        if sent_at is None:
            windows.pop(text, None)
        else:
            windows[text] = sent_at

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()
