"""Tracking which consumed offsets may be stored: durability before offsets.

Messages of one partition finish out of order (a slow endpoint, a fast one), but
the offset stored for a partition must never pass a message whose outcome is not
yet durable. The tracker stores, per partition, the lowest offset still in
flight (or one past the highest finished when nothing is in flight).
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field


@dataclass
class PartitionProgress:
    """In-flight offsets of one partition during one assignment of it."""

    topic: str
    partition: int
    in_flight: list[int] = field(default_factory=list)
    finished: set[int] = field(default_factory=set)
    next_offset: int = -1
    stored: int = -1


class OffsetTracker:
    """Per partition, the offset up to which every message's work is durable."""

    def __init__(self) -> None:
        """Start with no partitions."""
        self._lock = threading.Lock()
        self._partitions: dict[tuple[str, int], PartitionProgress] = {}

    def begin(self, topic: str, partition: int, offset: int) -> PartitionProgress:
        """Record that work for ``offset`` started; the token goes to :meth:`finish`."""
        with self._lock:
            progress = self._partitions.get((topic, partition))
            if progress is None:
                progress = PartitionProgress(topic, partition)
                self._partitions[(topic, partition)] = progress
            heapq.heappush(progress.in_flight, offset)
            return progress

    def finish(self, progress: PartitionProgress, offset: int) -> int | None:
        """Mark ``offset`` durable; return the offset to store if it advanced.

        A token from an assignment that was revoked since is ignored, so work
        that outlived its partition never stores an offset for the next owner.
        """
        with self._lock:
            if (
                self._partitions.get((progress.topic, progress.partition))
                is not progress
            ):
                return None
            progress.finished.add(offset)
            while progress.in_flight and progress.in_flight[0] in progress.finished:
                done = heapq.heappop(progress.in_flight)
                progress.finished.discard(done)
                progress.next_offset = max(progress.next_offset, done + 1)
            target = (
                progress.in_flight[0] if progress.in_flight else progress.next_offset
            )
            if target > progress.stored:
                progress.stored = target
                return target
            return None

    def forget(self, partitions: list[tuple[str, int]]) -> None:
        """Drop partitions that were revoked or lost."""
        with self._lock:
            for key in partitions:
                self._partitions.pop(key, None)

    def in_flight(self) -> int:
        """How many messages are in flight over all partitions."""
        with self._lock:
            return sum(len(p.in_flight) for p in self._partitions.values())
