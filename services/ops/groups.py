"""Consumer groups for operators: list, describe, and reset offsets safely.

A reset is planned first (old and new offset of every partition) and applied
only when asked. A plan changes nothing, so it is shown while the group has
members too, with the members named; applying it is refused while it has any,
because a running consumer would overwrite the new offsets with its own next
commit. The broker refuses it too, but naming the members tells the operator
what to stop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from services.ops.errors import KafkaUnanswered, OpsError
from switchboard.lag import (
    ADMIN_TIMEOUT_S,
    Partition,
    PartitionLag,
    committed_offsets,
    group_lag,
    list_offsets,
)

SWITCHBOARD_PREFIX = "switchboard."

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _kafka_answers(action: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn an admin request Kafka left unanswered into :class:`KafkaUnanswered`."""

    @functools.wraps(action)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return action(*args, **kwargs)
        except TimeoutError:
            raise KafkaUnanswered(f"no answer within {ADMIN_TIMEOUT_S:.0f} s") from None

    return call


@dataclass(frozen=True)
class Member:
    """One live consumer in a group."""

    member_id: str
    client_id: str
    host: str
    partitions: tuple[Partition, ...]


@dataclass(frozen=True)
class GroupSummary:
    """A group's state, member count and total lag."""

    group: str
    state: str
    members: int
    partitions: int
    lag: int


@dataclass(frozen=True)
class GroupDetail:
    """A group's members and the lag of each of its partitions."""

    group: str
    state: str
    members: list[Member]
    partitions: list[PartitionLag]


def _state_name(state: object) -> str:
    return getattr(state, "name", str(state)).lower()


def list_group_ids(admin: AdminClient, prefix: str = SWITCHBOARD_PREFIX) -> list[str]:
    """Ids of the cluster's consumer groups starting with ``prefix``, sorted."""
    listing = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_S).result(
        ADMIN_TIMEOUT_S
    )
    return sorted(g.group_id for g in listing.valid if g.group_id.startswith(prefix))


def describe_members(admin: AdminClient, group: str) -> tuple[str, list[Member]]:
    """A group's state and its live members."""
    description = admin.describe_consumer_groups(
        [group], request_timeout=ADMIN_TIMEOUT_S
    )[group].result(ADMIN_TIMEOUT_S)
    members = [
        Member(
            member_id=m.member_id,
            client_id=m.client_id,
            host=m.host,
            partitions=tuple(
                sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions)
            ),
        )
        for m in description.members
    ]
    return _state_name(description.state), members


def _detail(admin: AdminClient, group: str) -> GroupDetail:
    state, members = describe_members(admin, group)
    owners = {p: m.member_id for m in members for p in m.partitions}
    return GroupDetail(group, state, members, group_lag(admin, group, owners))


@_kafka_answers
def describe_group(admin: AdminClient, group: str) -> GroupDetail:
    """A group's state, members and per-partition lag with the owning member."""
    detail = _detail(admin, group)
    # Kafka describes a group it does not know as "dead" and empty; saying so
    # beats an empty table when the name has a typo.
    if detail.state == "dead" and not detail.members and not detail.partitions:
        raise OpsError(f"no consumer group {group}; `switchboard groups` lists them")
    return detail


def summarize(detail: GroupDetail) -> GroupSummary:
    """The one-line summary of a described group."""
    return GroupSummary(
        group=detail.group,
        state=detail.state,
        members=len(detail.members),
        partitions=len(detail.partitions),
        lag=sum(p.lag for p in detail.partitions),
    )


@_kafka_answers
def list_groups(
    admin: AdminClient, prefix: str = SWITCHBOARD_PREFIX
) -> list[GroupSummary]:
    """A summary of every group whose id starts with ``prefix``."""
    return [summarize(_detail(admin, g)) for g in list_group_ids(admin, prefix)]


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OpsError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ResetTarget:
    """Where a reset moves offsets: earliest, latest, a time or an exact offset."""

    kind: str
    timestamp_ms: int | None = None
    offset: int | None = None

    @classmethod
    def parse(cls, text: str) -> ResetTarget:
        """``earliest``, ``latest``, an ISO 8601 time, or a non-negative offset."""
        value = text.strip()
        if value in ("earliest", "latest"):
            return cls(value)
        if value.isdigit():
            return cls("offset", offset=int(value))
        try:
            moment = parse_time(value)
        except OpsError:
            raise OpsError(
                f"--to {text!r}: use earliest, latest, an ISO time or an offset"
            ) from None
        return cls("timestamp", timestamp_ms=int(moment.timestamp() * 1000))


@dataclass(frozen=True)
class PartitionReset:
    """One partition's move: its committed offset now and the one it gets."""

    topic: str
    partition: int
    old: int | None
    new: int
    note: str = ""


@dataclass
class ResetPlan:
    """Every partition move of one reset, and the group's live members when planned."""

    group: str
    target: ResetTarget
    moves: list[PartitionReset] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class GroupActiveError(OpsError):
    """Raised when a group that should be idle has live members."""

    def __init__(self, group: str, members: list[Member]) -> None:
        """Name the group and every live member."""
        names = ", ".join(f"{m.client_id}@{m.host} ({m.member_id})" for m in members)
        super().__init__(
            f"group {group} has {len(members)} active member(s): {names}; "
            "stop them before resetting its offsets"
        )
        self.members = members


def require_idle(admin: AdminClient, group: str) -> None:
    """Raise :class:`GroupActiveError` if the group has live members."""
    _state, members = describe_members(admin, group)
    if members:
        raise GroupActiveError(group, members)


def _partitions_of(
    admin: AdminClient,
    group: str,
    committed: dict[Partition, int | None],
    topic: str | None,
    partition: int | None,
) -> list[Partition]:
    if topic is None:
        if partition is not None:
            raise OpsError("--partition needs --topic")
        if not committed:
            raise OpsError(
                f"group {group} has no committed offsets (a group that never "
                "committed, or none of that name: `switchboard groups` lists "
                "them); name a --topic to set its first ones"
            )
        return sorted(committed)
    metadata = admin.list_topics(topic, timeout=ADMIN_TIMEOUT_S).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise OpsError(f"topic {topic} does not exist")
    numbers = sorted(metadata.partitions)
    if partition is not None:
        if partition not in numbers:
            raise OpsError(f"topic {topic} has no partition {partition}")
        numbers = [partition]
    return [(topic, n) for n in numbers]


@_kafka_answers
def plan_reset(
    admin: AdminClient,
    group: str,
    target: ResetTarget,
    topic: str | None = None,
    partition: int | None = None,
) -> ResetPlan:
    """The moves a reset would make, and the members that must stop before it.

    Without ``topic`` every partition the group has committed for is reset.
    An exact offset outside a partition's log is clamped to it, and a time later
    than every message moves to the end.
    """
    _state, members = describe_members(admin, group)
    committed = committed_offsets(admin, group)
    partitions = _partitions_of(admin, group, committed, topic, partition)
    starts = list_offsets(admin, partitions, OffsetSpec.earliest())
    ends = list_offsets(admin, partitions, OffsetSpec.latest())
    at_time: dict[Partition, int] = {}
    if target.kind == "timestamp":
        spec = OffsetSpec.for_timestamp(target.timestamp_ms)
        at_time = list_offsets(admin, partitions, spec)
    plan = ResetPlan(group, target, members=members)
    read_topics = sorted({t for t, _p in committed})
    if topic is not None and read_topics and topic not in read_topics:
        plan.warnings.append(
            f"group {group} has committed offsets on {', '.join(read_topics)} but "
            f"none on {topic}; check that it reads {topic}"
        )
    for key in partitions:
        new, note = _new_offset(target, starts[key], ends[key], at_time.get(key))
        plan.moves.append(PartitionReset(key[0], key[1], committed.get(key), new, note))
    return plan


def _new_offset(
    target: ResetTarget, start: int, end: int, at_time: int | None
) -> tuple[int, str]:
    if target.kind == "earliest":
        return start, ""
    if target.kind == "latest":
        return end, ""
    if target.kind == "timestamp":
        # The broker answers -1 when no message is that recent.
        if at_time is None or at_time < 0:
            return end, "no message at or after that time"
        return at_time, ""
    assert target.offset is not None
    clamped = min(max(target.offset, start), end)
    return clamped, "" if clamped == target.offset else f"clamped to {start}..{end}"


@_kafka_answers
def apply_reset(admin: AdminClient, plan: ResetPlan) -> None:
    """Commit the plan's new offsets for the group (checking it is still idle)."""
    require_idle(admin, plan.group)
    partitions = [TopicPartition(m.topic, m.partition, m.new) for m in plan.moves]
    request = [ConsumerGroupTopicPartitions(plan.group, partitions)]
    futures = admin.alter_consumer_group_offsets(
        request, request_timeout=ADMIN_TIMEOUT_S
    )
    result = futures[plan.group].result(ADMIN_TIMEOUT_S)
    failed = [tp for tp in result.topic_partitions or [] if tp.error is not None]
    if failed:
        details = "; ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in failed)
        raise OpsError(f"the broker refused some offsets: {details}")
