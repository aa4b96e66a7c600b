"""Consumer-group lag: how far each partition's committed offset trails its end.

Lag is computed from the broker alone (committed offsets of the group and the
partitions' end offsets through the admin API), so it is the same figure an
operator sees with ``switchboard groups describe`` and it does not touch the
consumer a service is polling with.

A service exports its own group's lag by starting a :class:`LagExporter`; it
sets ``switchboard_consumer_lag{group,topic,partition}`` every interval::

    exporter = LagExporter(settings, RECORDER_GROUP).start()
    ...  # run the consumer loop
    exporter.stop()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import Gauge

from switchboard.kafka import make_admin
from switchboard.settings import Settings

log = logging.getLogger(__name__)

ADMIN_TIMEOUT_S = 10.0
DEFAULT_INTERVAL_S = 15.0

CONSUMER_LAG = Gauge(
    "switchboard_consumer_lag",
    "Messages between a consumer group's committed offset and the partition's end.",
    ["group", "topic", "partition"],
)

Partition = tuple[str, int]


@dataclass(frozen=True)
class PartitionLag:
    """One partition of a group: committed offset, log range, lag and owner."""

    group: str
    topic: str
    partition: int
    committed: int | None
    log_start: int
    end: int
    member: str | None = None

    @property
    def lag(self) -> int:
        """Messages not yet consumed; from the log start when nothing is committed.

        A committed offset below the log start (retention deleted what the group
        never read) counts only the messages that still exist.
        """
        consumed_to = self.log_start if self.committed is None else self.committed
        return max(self.end - max(consumed_to, self.log_start), 0)


def committed_offsets(admin: AdminClient, group: str) -> dict[Partition, int | None]:
    """Every partition the group has committed for, with the offset (None: none)."""
    request = [ConsumerGroupTopicPartitions(group)]
    futures = admin.list_consumer_group_offsets(
        request, request_timeout=ADMIN_TIMEOUT_S
    )
    result = futures[group].result(ADMIN_TIMEOUT_S)
    return {
        (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None
        for tp in result.topic_partitions or []
    }


def list_offsets(
    admin: AdminClient, partitions: Iterable[Partition], spec: OffsetSpec
) -> dict[Partition, int]:
    """The offset ``spec`` resolves to on each partition (read-committed ends).

    A partition that no longer exists (its topic was deleted since the group
    committed) is left out.
    """
    wanted = {TopicPartition(topic, partition): spec for topic, partition in partitions}
    if not wanted:
        return {}
    futures = admin.list_offsets(
        wanted,
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=ADMIN_TIMEOUT_S,
    )
    offsets = {}
    for tp, future in futures.items():
        try:
            offsets[(tp.topic, tp.partition)] = future.result(ADMIN_TIMEOUT_S).offset
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    return offsets


def group_lag(
    admin: AdminClient,
    group: str,
    owners: dict[Partition, str] | None = None,
) -> list[PartitionLag]:
    """Lag of every partition the group has committed for or has assigned.

    ``owners`` maps assigned partitions to the member that owns them (from a
    group description); assigned partitions without a commit are included too.
    """
    owners = owners or {}
    committed = committed_offsets(admin, group)
    partitions = sorted(set(committed) | set(owners))
    starts = list_offsets(admin, partitions, OffsetSpec.earliest())
    ends = list_offsets(admin, partitions, OffsetSpec.latest())
    return [
        PartitionLag(
            group=group,
            topic=topic,
            partition=partition,
            committed=committed.get((topic, partition)),
            log_start=starts[(topic, partition)],
            end=ends[(topic, partition)],
            member=owners.get((topic, partition)),
        )
        for topic, partition in partitions
        if (topic, partition) in starts and (topic, partition) in ends
    ]


def member_partitions(admin: AdminClient, group: str) -> dict[Partition, str]:
    """The partitions currently assigned in a group, each with its member id."""
    description = admin.describe_consumer_groups(
        [group], request_timeout=ADMIN_TIMEOUT_S
    )[group].result(ADMIN_TIMEOUT_S)
    return {
        (tp.topic, tp.partition): member.member_id
        for member in description.members
        for tp in member.assignment.topic_partitions
    }


class LagExporter:
    """Sets ``switchboard_consumer_lag`` for one group every ``interval_s`` seconds.

    Every process of a group computes the same figures; pass ``member_id`` (for
    example ``consumer.memberid``) to export only the partitions this process
    owns, so that summing over processes counts each partition once (stop the
    exporter before closing that consumer).
    """

    def __init__(
        self,
        settings: Settings,
        group: str,
        interval_s: float = DEFAULT_INTERVAL_S,
        member_id: Callable[[], str | None] | None = None,
    ) -> None:
        """Prepare the exporter; :meth:`start` begins the background refresh."""
        self.group = group
        self._admin = make_admin(settings)
        self._interval_s = interval_s
        self._member_id = member_id
        self._exported: set[Partition] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lag-{group}", daemon=True
        )

    def start(self) -> LagExporter:
        """Start refreshing in a daemon thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop refreshing and wait for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=ADMIN_TIMEOUT_S * 3)

    def refresh(self) -> list[PartitionLag]:
        """Compute the group's lag once and set the gauge; returns the figures."""
        owners = member_partitions(self._admin, self.group)
        figures = group_lag(self._admin, self.group, owners)
        if self._member_id is not None:
            mine = self._member_id()
            figures = [f for f in figures if f.member is not None and f.member == mine]
        current = {(f.topic, f.partition) for f in figures}
        for topic, partition in self._exported - current:
            CONSUMER_LAG.remove(self.group, topic, str(partition))
        for figure in figures:
            CONSUMER_LAG.labels(self.group, figure.topic, str(figure.partition)).set(
                figure.lag
            )
        self._exported = current
        return figures

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except (KafkaException, TimeoutError) as error:
                # The next refresh retries; a stale figure is better than none.
                # An unanswered admin request raises TimeoutError, which would
                # otherwise end this thread and freeze the gauge for good.
                log.warning(
                    "consumer lag not refreshed",
                    extra={"group": self.group, "error": str(error) or "timed out"},
                )
            self._stop.wait(self._interval_s)


def export_lag_of(settings: Settings, groups: list[str], port: int) -> None:
    """Start a :class:`LagExporter` per group when this process serves metrics.

    Each process exports its groups' whole lag; queries take the maximum per
    partition (see docs/operations.md), so several processes agree.
    """
    if port == 0:
        return
    for group in groups:
        LagExporter(settings, group).start()
