"""The router on the real broker: routing, dead letters, config changes, throttling."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
from datetime import timedelta
from typing import Any

import fastavro
from confluent_kafka.admin import NewTopic
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from prometheus_client import REGISTRY

from services.deliverer.text import TRUNCATION_MARKER
from services.router.app import (
    REASON_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
)
from switchboard.codec import SCHEMA_DIR, SINGLE_OBJECT_MARKER, Codec
from switchboard.domain import job_id_for
from switchboard.kafka import header_value

V1_CODEC = Codec(reader_versions={"AlertEvent": 1})
FUTURE_FIELD = {"name": "runbook_url", "type": "string"}


def encode_future_alert(alert: dict[str, Any]) -> bytes:
    """An AlertEvent written with a newer schema version the router does not know."""
    schema = json.loads((SCHEMA_DIR / "AlertEvent.v2.avsc").read_text())
    schema["fields"].append(FUTURE_FIELD)
    parsed = parse_schema(schema, _write_hint=False)
    digest = bytes.fromhex(
        fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
    )
    buffer = io.BytesIO()
    buffer.write(SINGLE_OBJECT_MARKER + digest)
    fastavro.schemaless_writer(buffer, parsed, {**alert, "runbook_url": "https://x"})
    return buffer.getvalue()


def job_events(world, reader, at_least: int) -> list[dict]:
    """Decoded job events of the test's jobs topic."""
    messages = reader.read(world.topics.jobs, at_least)
    return [world.codec.decode("JobEvent", m.value()) for m in messages]


def commands(world, reader, channel_type: str, at_least: int) -> list[dict]:
    """Decoded delivery commands of one channel type."""
    messages = reader.read(world.topics.delivery(channel_type), at_least)
    return [world.codec.decode("DeliveryCommand", m.value()) for m in messages]


def test_routes_an_event_to_a_command_and_a_queued_job(world, reader) -> None:
    """A match yields a command keyed by channel and a queued job event keyed by job."""
    channel = world.channel("slack")
    rule = world.rule(channel)
    alert = world.alert("a-1")
    world.send(alert)

    with world.running():
        delivered = reader.read(world.topics.delivery("slack"), 1)
        events = job_events(world, reader, 1)

    job_id = job_id_for(alert["event_id"], rule.id, channel.id)
    assert [m.key().decode() for m in delivered] == [channel.id]
    command = world.codec.decode("DeliveryCommand", delivered[0].value())
    assert command["job_id"] == job_id
    assert command["attempt"] == 1
    assert command["rule_id"] == rule.id
    assert command["alert"]["event_id"] == alert["event_id"]
    assert [(e["job_id"], e["state"], e["attempt"]) for e in events] == [
        (job_id, "queued", 1)
    ]


def test_routes_events_written_with_the_older_schema(world, reader) -> None:
    """A v1 AlertEvent (no labels) is read as v2 and routed like any other."""
    world.rule(world.channel())
    alert = world.alert("a-1")
    old = {key: value for key, value in alert.items() if key != "labels"}
    world.send_raw(f"{world.tenant_id}/a-1", V1_CODEC.encode("AlertEvent", old))
    world.producer.flush(30)

    with world.running():
        sent = commands(world, reader, "webhook", 1)

    assert [c["alert"]["event_id"] for c in sent] == [alert["event_id"]]
    assert sent[0]["alert"]["labels"] == {}


def test_undecodable_input_is_dead_lettered_between_good_events(world, reader) -> None:
    """Garbage, a truncated record, another record type and a newer version go to the
    dead-letter topic with their bytes and reasons; every good event is routed."""
    world.rule(world.channel())
    good = [world.alert(f"a-{i}") for i in range(4)]
    good_bytes = [world.codec.encode("AlertEvent", a) for a in good]
    other_record = world.codec.encode(
        "ConfigEvent",
        {
            "outbox_id": 1,
            "changed_at": good[0]["occurred_at"],
            "channel": None,
            "rule": None,
        },
    )
    bad = {
        "garbage": b"\x00not avro at all",
        "truncated": good_bytes[0][:-7],
        "other-record": other_record,
        "future-version": encode_future_alert(world.alert("a-f")),
    }
    key = f"{world.tenant_id}/a-bad"
    for value, (name, bad_value) in zip(good_bytes, bad.items(), strict=True):
        world.send_raw(key, value)
        world.send_raw(key, bad_value, headers=[("case", name.encode())])
    world.producer.flush(30)

    with world.running():
        dead = reader.read(world.topics.dlq, len(bad))
        events = job_events(world, reader, len(good))

    assert sorted(e["event_id"] for e in events) == sorted(a["event_id"] for a in good)
    assert {header_value(m, "case"): m.value() for m in dead} == {
        name: value for name, value in bad.items()
    }
    for message in dead:
        assert message.key().decode() == key
        assert header_value(message, SOURCE_TOPIC_HEADER) == world.topics.alerts
        assert header_value(message, SOURCE_PARTITION_HEADER).isdigit()
        assert header_value(message, SOURCE_OFFSET_HEADER).isdigit()
        assert header_value(message, REASON_HEADER)
    reasons = {header_value(m, "case"): header_value(m, REASON_HEADER) for m in dead}
    assert "unknown schema fingerprint" in reasons["future-version"]
    assert "does not decode" in reasons["truncated"]


def test_an_alert_too_large_to_carry_is_cut_and_routed_not_stuck(world, reader) -> None:
    """An alert near Kafka's message limit would make every transaction carrying
    it fail; it is routed with its details cut, and the events after it too. One
    too large by its identifiers alone is dead-lettered."""
    world.rule(world.channel())
    before, after = world.alert("a-before"), world.alert("a-after")
    huge = world.alert("a-huge", details="d" * 950_000)
    unroutable = world.alert("i" * 600_000)
    world.send(before, huge)
    # A short key: the message must fit the alerts topic to reach the router.
    world.send_raw("short-key", world.codec.encode("AlertEvent", unroutable))
    world.send(after)

    with world.running():
        events = job_events(world, reader, 3)
        sent = commands(world, reader, "webhook", 3)
        dead = reader.read(world.topics.dlq, 1)

    assert sorted(e["event_id"] for e in events) == sorted(
        a["event_id"] for a in (before, huge, after)
    )
    cut = next(c["alert"] for c in sent if c["alert"]["event_id"] == huge["event_id"])
    assert cut["details"].endswith(TRUNCATION_MARKER)
    assert len(cut["details"]) < len(huge["details"])
    assert len(dead) == 1
    assert header_value(dead[0], REASON_HEADER).startswith("alert of ")
    assert dead[0].value() == world.codec.encode("AlertEvent", unroutable)


def test_unknown_tenant_matches_nothing_and_is_not_dead_lettered(world, reader) -> None:
    """An event of a tenant without rules is consumed quietly."""
    world.rule(world.channel())
    stranger = {**world.alert("a-1"), "tenant_id": f"{world.tenant_id}-x"}
    known = world.alert("a-1")
    world.send(stranger, known)

    with world.running():
        world.wait_consumed()
        events = job_events(world, reader, 0)
        dead = reader.read(world.topics.dlq)

    assert [e["event_id"] for e in events] == [known["event_id"]]
    assert dead == []


def test_config_changes_apply_to_later_events(world, reader) -> None:
    """Adding, changing, disabling and deleting a rule, and disabling its channel,
    each take effect for the events that come after the change."""
    channel = world.channel()
    first = world.rule(channel, alert_types=("cpu",))

    with world.running() as router:

        def route(alert_type: str) -> list[str]:
            alert = world.alert("a-1", alert_type=alert_type)
            world.send(alert)
            world.wait_consumed()
            events = job_events(world, reader, 0)
            return [e["rule_id"] for e in events if e["event_id"] == alert["event_id"]]

        def publish(change, expect) -> None:
            change()
            world.wait_for(
                lambda: expect(router.config.snapshot()), "config change in cache"
            )

        assert route("cpu") == [first.id]
        assert route("disk") == []

        added = world.rule(channel, alert_types=("disk",), priority=20)
        world.wait_for(
            lambda: added.id in router.config.snapshot()[2], "new rule in cache"
        )
        assert route("disk") == [added.id]

        changed = first.__class__(**{**first.__dict__, "alert_types": ("disk",)})
        publish(
            lambda: world.publish_rule(changed),
            lambda snap: snap[2][first.id].alert_types == ("disk",),
        )
        assert sorted(route("disk")) == sorted([first.id, added.id])
        assert route("cpu") == []

        disabled = changed.__class__(**{**changed.__dict__, "enabled": False})
        publish(
            lambda: world.publish_rule(disabled),
            lambda snap: not snap[2][first.id].enabled,
        )
        assert route("disk") == [added.id]

        publish(lambda: world.delete_rule(added), lambda snap: added.id not in snap[2])
        world.publish_rule(changed)
        world.wait_for(
            lambda: router.config.snapshot()[2][first.id].enabled, "re-enabled"
        )
        assert route("disk") == [first.id]

        off = channel.__class__(**{**channel.__dict__, "enabled": False})
        publish(
            lambda: world.publish_channel(off),
            lambda snap: not snap[1][channel.id].enabled,
        )
        assert route("disk") == []


def test_throttle_suppresses_repeats_of_the_same_kind(world, reader) -> None:
    """Repeats of one kind inside the window are suppressed and recorded; another kind
    (CLOSED after a delivered OPEN) goes through; after the window it sends again;
    a CLOSED after the alert opened again goes through inside its own window."""
    rule = world.rule(world.channel(), throttle_minutes=10)
    start = world.alert("a-1")["occurred_at"]

    def at(minutes: float, kind: str = "OPEN", alert_id: str = "a-1") -> dict:
        moment = start + timedelta(minutes=minutes)
        return world.alert(alert_id, kind=kind, occurred_at=moment)

    alerts = [
        at(0),
        at(1),
        at(2, "ACKNOWLEDGED"),
        at(3, "CLOSED"),
        at(4, "CLOSED"),
        at(4, alert_id="a-2"),
        at(10.5),
        at(11, "CLOSED"),
        at(11.5, "CLOSED"),
    ]
    world.send(*alerts)

    with world.running():
        events = job_events(world, reader, len(alerts))

    by_event = {e["event_id"]: e for e in events}
    states = [
        (by_event[a["event_id"]]["state"], by_event[a["event_id"]]["reason"])
        for a in alerts
    ]
    queued, suppressed = ("queued", None), ("suppressed", "throttled")
    assert states == [
        *(queued, suppressed, queued, queued, suppressed, queued, queued),
        *(queued, suppressed),
    ]
    assert all(e["rule_id"] == rule.id for e in events)
    sent = {c["alert"]["event_id"] for c in commands(world, reader, "webhook", 6)}
    assert sent == {
        a["event_id"] for a, s in zip(alerts, states, strict=True) if s == queued
    }


def test_throttle_windows_survive_a_restart(world, reader) -> None:
    """A new router in the group restores the windows its predecessor committed."""
    world.rule(world.channel(), throttle_minutes=30)
    first = world.alert("a-1")
    world.send(first)
    with world.running():
        job_events(world, reader, 1)

    repeat = copy.deepcopy(first)
    repeat["event_id"] = world.alert("a-1")["event_id"]
    closed = world.alert("a-1", kind="CLOSED")
    world.send(repeat, closed)
    with world.running():
        events = job_events(world, reader, 3)

    states = {e["event_id"]: e["state"] for e in events}
    assert states == {
        first["event_id"]: "queued",
        repeat["event_id"]: "suppressed",
        closed["event_id"]: "queued",
    }


def test_throttle_windows_follow_partitions_in_a_rebalance(world, reader) -> None:
    """A second router joining the group takes partitions with their windows."""
    world.rule(world.channel(), throttle_minutes=30)
    firsts = [world.alert(f"a-{i}") for i in range(30)]
    world.send(*firsts)

    with world.running() as first_router:
        world.wait_consumed()
        with world.running() as second_router:
            world.wait_for(
                lambda: first_router.assigned and second_router.assigned,
                "both routers to own partitions",
            )
            repeats = [world.alert(f"a-{i}") for i in range(30)]
            world.send(*repeats)
            world.wait_consumed()
            events = job_events(world, reader, 60)

    states = {e["event_id"]: e["state"] for e in events}
    assert [states[a["event_id"]] for a in firsts] == ["queued"] * 30
    assert [states[a["event_id"]] for a in repeats] == ["suppressed"] * 30


METRICS = [
    ("switchboard_router_events_consumed_total", {}),
    ("switchboard_router_events_matched_total", {}),
    ("switchboard_router_jobs_emitted_total", {"channel_type": "teams"}),
    ("switchboard_router_jobs_suppressed_total", {"channel_type": "teams"}),
    ("switchboard_router_dead_lettered_total", {"reason": "UnknownSchemaError"}),
]


class Records(logging.Handler):
    """Collects log records of one logger for a test."""

    def __init__(self) -> None:
        """An empty collection."""
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(record)


def test_metrics_count_and_logs_stay_per_batch(world, reader) -> None:
    """Counters move by what was routed; the log has batch lines at debug only."""
    channel = world.channel("teams")
    world.rule(channel)
    world.rule(channel, priority=20, alert_types=("cpu",), throttle_minutes=10)
    alerts = [world.alert("a-1", alert_type="cpu") for _ in range(20)]
    before = {name: sample(name, labels) for name, labels in METRICS}
    records = Records()
    logger = logging.getLogger("services.router")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        world.send(*alerts)
        world.send_raw("k", b"garbage")
        world.producer.flush(30)
        with world.running():
            world.wait_consumed()
            world.wait_for(
                lambda: sample(*METRICS[0]) - before[METRICS[0][0]] >= 21,
                "metrics of the last batch",
            )
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)

    moved = {name: sample(name, labels) - before[name] for name, labels in METRICS}
    assert moved == {
        "switchboard_router_events_consumed_total": 21,
        "switchboard_router_events_matched_total": 20,
        "switchboard_router_jobs_emitted_total": 21,
        "switchboard_router_jobs_suppressed_total": 19,
        "switchboard_router_dead_lettered_total": 1,
    }
    batch_lines = [r for r in records.records if r.getMessage() == "batch routed"]
    assert batch_lines and all(r.levelno == logging.DEBUG for r in batch_lines)
    info_lines = [r.getMessage() for r in records.records if r.levelno >= logging.INFO]
    assert len(info_lines) < len(alerts)


def sample(name: str, labels: dict[str, str]) -> float:
    """The current value of one router metric in this process."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_aborted_transactions_are_routed_again(world, reader, admin) -> None:
    """While a delivery topic is missing every batch aborts; once it exists the
    rewound events are routed, each job exactly once."""
    world.rule(world.channel("mqtt"))
    prefix = f"{world.topics.delivery_prefix}late."
    world.topics = dataclasses.replace(world.topics, delivery_prefix=prefix)
    alerts = [world.alert(f"a-{i}") for i in range(10)]
    world.send(*alerts)
    aborted = sample("switchboard_router_transactions_aborted_total", {})
    fast_failure = {"topic.metadata.propagation.max.ms": 500}

    with world.running(producer_overrides=fast_failure):
        world.wait_for(
            lambda: (
                sample("switchboard_router_transactions_aborted_total", {}) > aborted
            ),
            "a transaction to abort",
        )
        late_topic = world.topics.delivery("mqtt")
        admin.create_topics([NewTopic(late_topic, num_partitions=1)])[
            late_topic
        ].result(30)
        try:
            world.wait_consumed()
            sent = commands(world, reader, "mqtt", len(alerts))
            events = job_events(world, reader, len(alerts))
        finally:
            admin.delete_topics([late_topic])[late_topic].result(60)

    expected = sorted(a["event_id"] for a in alerts)
    assert sorted(c["alert"]["event_id"] for c in sent) == expected
    assert sorted(e["event_id"] for e in events) == expected
