"""Topic names and the specification of every topic Switchboard uses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, TopicMetadata

from switchboard.settings import Settings

CHANNEL_TYPES = ("slack", "pagerduty", "teams", "webhook", "snmp", "email", "mqtt")

CONFIG_TOPIC = "notify.config"
JOBS_TOPIC = "notify.jobs"
ROUTER_DLQ_TOPIC = "notify.router.dlq"
THROTTLE_TOPIC = "notify.router.throttle"

ROUTER_GROUP = "switchboard.router"
RECORDER_GROUP = "switchboard.recorder"

# How long a topic someone else just created may take to show in metadata.
METADATA_WAIT_S = 5.0


def delivery_topic(channel_type: str) -> str:
    """The main delivery topic of a channel type."""
    return f"notify.delivery.{channel_type}"


def retry_topic(channel_type: str, delay_label: str) -> str:
    """The retry topic of a channel type for one delay tier, e.g. ``10s``."""
    return f"notify.delivery.{channel_type}.retry-{delay_label}"


def dlq_topic(channel_type: str) -> str:
    """The dead-letter topic of a channel type."""
    return f"notify.delivery.{channel_type}.dlq"


def deliverer_group(channel_type: str) -> str:
    """Consumer group of a channel type's main topic."""
    return f"switchboard.deliverer.{channel_type}"


def deliverer_retry_group(channel_type: str) -> str:
    """Consumer group of a channel type's retry topics."""
    return f"switchboard.deliverer.{channel_type}.retry"


@dataclass(frozen=True)
class TopicSpec:
    """A topic's name, partition count, replication and the configs it must have."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    replication: int = 1


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the design, with partitions, replication and configs."""
    partitions = settings.topic_partitions
    retained = {"cleanup.policy": "delete", "retention.ms": str(settings.retention_ms)}
    compacted_forever = {"cleanup.policy": "compact", "retention.ms": "-1"}
    specs = [
        TopicSpec(settings.alerts_topic, partitions, retained),
        TopicSpec(CONFIG_TOPIC, 1, compacted_forever),
        TopicSpec(JOBS_TOPIC, partitions, retained),
        TopicSpec(ROUTER_DLQ_TOPIC, 1, retained),
        # Co-partitioned with the alerts topic: a router owning alerts partition N
        # restores the throttle windows of exactly partition N.
        TopicSpec(THROTTLE_TOPIC, partitions, {"cleanup.policy": "compact"}),
    ]
    for channel_type in CHANNEL_TYPES:
        specs.append(TopicSpec(delivery_topic(channel_type), partitions, retained))
        for label, _delay_ms in settings.retry_tiers:
            specs.append(
                TopicSpec(retry_topic(channel_type, label), partitions, retained)
            )
        specs.append(TopicSpec(dlq_topic(channel_type), partitions, retained))
    replication = settings.topic_replication
    return [replace(spec, replication=replication) for spec in specs]


@dataclass(frozen=True)
class TopicReport:
    """What ``ensure_topics`` did or found for one topic."""

    name: str
    action: str
    problems: list[str]


def ensure_topics(
    admin: AdminClient, specs: list[TopicSpec], timeout_s: float = 30.0
) -> list[TopicReport]:
    """Create missing topics; report existing ones whose settings differ.

    A topic another process created since we listed the cluster is checked like
    any existing one, so a concurrent creation with other settings is reported.
    """
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [spec for spec in specs if spec.name not in existing]
    reports, raced = _create(admin, missing, timeout_s)
    if raced:
        existing = _wait_for_metadata(admin, raced, timeout_s)
    present = [spec for spec in specs if spec.name in existing]
    reports += [
        TopicReport(name, "exists", []) for name in raced if name not in existing
    ]
    return reports + _check(admin, present, existing)


def _create(
    admin: AdminClient, missing: list[TopicSpec], timeout_s: float
) -> tuple[list[TopicReport], list[str]]:
    """Create ``missing``; reports, and the names someone else created first."""
    if not missing:
        return [], []
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication,
            config=spec.configs,
        )
        for spec in missing
    ]
    futures = admin.create_topics(new_topics, operation_timeout=timeout_s)
    reports, raced = [], []
    for name, future in futures.items():
        try:
            future.result()
            reports.append(TopicReport(name, "created", []))
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                raced.append(name)
            else:
                reports.append(TopicReport(name, "failed", [error.args[0].str()]))
    return reports, raced


def _wait_for_metadata(
    admin: AdminClient, names: list[str], timeout_s: float
) -> dict[str, TopicMetadata]:
    """The cluster's topics once ``names`` show in its metadata (or after a while)."""
    deadline = time.monotonic() + min(timeout_s, METADATA_WAIT_S)
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        if all(name in topics for name in names) or time.monotonic() > deadline:
            return topics
        time.sleep(0.2)


def _check(
    admin: AdminClient, present: list[TopicSpec], existing: dict[str, TopicMetadata]
) -> list[TopicReport]:
    """Compare existing topics with their specs: partitions, replication, configs."""
    if not present:
        return []
    resources = [ConfigResource("topic", spec.name) for spec in present]
    described = admin.describe_configs(resources)
    reports = []
    for spec, resource in zip(present, resources, strict=True):
        problems = _layout_problems(existing[spec.name], spec)
        try:
            configs = described[resource].result()
        except KafkaException as error:
            reports.append(TopicReport(spec.name, "failed", [error.args[0].str()]))
            continue
        for key, expected in spec.configs.items():
            actual = configs[key].value if key in configs else None
            if actual != expected:
                problems.append(f"{key}={actual}, expected {expected}")
        reports.append(
            TopicReport(spec.name, "mismatch" if problems else "ok", problems)
        )
    return reports


def _layout_problems(metadata: TopicMetadata, spec: TopicSpec) -> list[str]:
    """How an existing topic's partition count and replication differ from spec."""
    problems = []
    partitions = len(metadata.partitions)
    if partitions != spec.partitions:
        problems.append(f"has {partitions} partitions, expected {spec.partitions}")
    replicas = {len(p.replicas) for p in metadata.partitions.values()}
    if replicas and replicas != {spec.replication}:
        shown = ",".join(str(r) for r in sorted(replicas))
        problems.append(f"has replication {shown}, expected {spec.replication}")
    return problems
