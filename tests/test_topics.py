"""Topic creation: idempotent, with the design's settings, and mismatches reported."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from switchboard.settings import Settings
from switchboard.topics import (
    CHANNEL_TYPES,
    TopicSpec,
    ensure_topics,
    retry_topic,
    topic_specs,
)


def test_specs_cover_every_topic_of_the_design() -> None:
    settings = Settings(retry_delays="10s,1m,10m,1h")

    names = {spec.name for spec in topic_specs(settings)}

    assert {
        "alerts",
        "notify.config",
        "notify.jobs",
        "notify.router.dlq",
        "notify.router.throttle",
    } <= names
    for channel_type in CHANNEL_TYPES:
        assert f"notify.delivery.{channel_type}" in names
        assert f"notify.delivery.{channel_type}.dlq" in names
        for label in ("10s", "1m", "10m", "1h"):
            assert retry_topic(channel_type, label) in names


def test_compacted_topics_are_compacted() -> None:
    specs = {spec.name: spec for spec in topic_specs(Settings())}

    assert specs["notify.config"].configs["cleanup.policy"] == "compact"
    assert specs["notify.config"].configs["retention.ms"] == "-1"
    assert specs["notify.router.throttle"].configs["cleanup.policy"] == "compact"
    assert specs["notify.router.throttle"].partitions == specs["alerts"].partitions


def test_retention_and_replication_come_from_settings() -> None:
    settings = Settings(retention_ms=3_600_000, topic_replication=3)

    specs = {spec.name: spec for spec in topic_specs(settings)}

    assert specs["notify.jobs"].configs["retention.ms"] == "3600000"
    assert specs["notify.delivery.slack.dlq"].configs["retention.ms"] == "3600000"
    assert {spec.replication for spec in specs.values()} == {3}


def test_creating_twice_creates_once(
    admin: AdminClient, settings: Settings, unique: str
) -> None:
    spec = TopicSpec(f"test.topics.{unique}", 2, {"cleanup.policy": "compact"})

    first = ensure_topics(admin, [spec])
    second = ensure_topics(admin, [spec])

    assert [r.action for r in first] == ["created"]
    assert [(r.action, r.problems) for r in second] == [("ok", [])]
    admin.delete_topics([spec.name])


def test_existing_topic_with_wrong_settings_is_reported(
    admin: AdminClient, settings: Settings, unique: str
) -> None:
    name = f"test.topics.wrong.{unique}"
    admin.create_topics([NewTopic(name, num_partitions=1)])[name].result(30)
    spec = TopicSpec(name, 3, {"cleanup.policy": "compact"}, replication=2)

    [report] = ensure_topics(admin, [spec])

    assert report.action == "mismatch"
    assert "has 1 partitions, expected 3" in report.problems
    assert "has replication 1, expected 2" in report.problems
    assert "cleanup.policy=delete, expected compact" in report.problems
    admin.delete_topics([name])
