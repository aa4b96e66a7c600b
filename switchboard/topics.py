"""Topic names and the specification of every topic Switchboard uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from switchboard.settings import Settings

CHANNEL_TYPES = ("slack", "pagerduty", "teams", "webhook", "snmp", "email", "mqtt")

CONFIG_TOPIC = "notify.config"
JOBS_TOPIC = "notify.jobs"
ROUTER_DLQ_TOPIC = "notify.router.dlq"
THROTTLE_TOPIC = "notify.router.throttle"

ROUTER_GROUP = "switchboard.router"
RECORDER_GROUP = "switchboard.recorder"


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
    """A topic's name, partition count and the configs that must hold for it."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the design, with partitions and configs from settings."""
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
    return specs


@dataclass(frozen=True)
class TopicReport:
    """What ``ensure_topics`` did or found for one topic."""

    name: str
    action: str
    problems: list[str]


def ensure_topics(
    admin: AdminClient, specs: list[TopicSpec], timeout_s: float = 30.0
) -> list[TopicReport]:
    """Create missing topics; report existing ones whose settings differ."""
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [spec for spec in specs if spec.name not in existing]
    reports: list[TopicReport] = []
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(spec.name, num_partitions=spec.partitions, config=spec.configs)
                for spec in missing
            ],
            operation_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result()
                reports.append(TopicReport(name, "created", []))
            except Exception as error:
                if "TOPIC_ALREADY_EXISTS" in str(error):
                    reports.append(TopicReport(name, "exists", []))
                else:
                    reports.append(TopicReport(name, "failed", [str(error)]))

    present = [spec for spec in specs if spec.name in existing]
    if present:
        resources = [ConfigResource("topic", spec.name) for spec in present]
        described = admin.describe_configs(resources)
        for spec, resource in zip(present, resources, strict=True):
            problems = []
            partitions = len(existing[spec.name].partitions)
            if partitions != spec.partitions:
                problems.append(
                    f"has {partitions} partitions, expected {spec.partitions}"
                )
            configs = described[resource].result()
            for key, expected in spec.configs.items():
                actual = configs[key].value if key in configs else None
                if actual != expected:
                    problems.append(f"{key}={actual}, expected {expected}")
            reports.append(
                TopicReport(spec.name, "mismatch" if problems else "ok", problems)
            )
    return reports
