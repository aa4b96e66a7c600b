"""A polled batch of alert events and everything the router decided for it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message, TopicPartition


@dataclass
class BatchTally:
    """What one batch did, for metrics and its log line."""

    events: int = 0
    matched: int = 0
    jobs: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)


# (topic, key, value, produce keyword arguments such as partition and headers)
Output = tuple[str, str | bytes | None, bytes | None, dict[str, Any]]


@dataclass
class PreparedBatch:
    """A polled batch with everything decided and encoded, ready to produce."""

    messages: list[Message]
    started: float
    outputs: list[Output] = field(default_factory=list)
    tally: BatchTally = field(default_factory=BatchTally)

    def add(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes | None,
        **extra: Any,
    ) -> None:
        """Queue one message for the batch's transaction."""
        self.outputs.append((topic, key, value, extra))


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """The offsets to commit: one past the last message of each partition."""
    last: dict[tuple[str, int], int] = {}
    for message in messages:
        position = (message.topic(), message.partition())
        last[position] = max(last.get(position, -1), message.offset())
    return [TopicPartition(topic, p, offset + 1) for (topic, p), offset in last.items()]
