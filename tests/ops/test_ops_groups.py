"""Consumer-group lag, description and offset reset against the real broker."""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from services.ops.errors import OpsError
from services.ops.groups import (
    GroupActiveError,
    ResetTarget,
    apply_reset,
    describe_group,
    list_groups,
    plan_reset,
)
from switchboard.cli import app
from switchboard.kafka import make_admin, make_consumer
from switchboard.lag import ADMIN_TIMEOUT_S, LagExporter, group_lag
from switchboard.settings import Settings
from tests.ops.helpers import committed, joined_consumer, produce, wait_for

PRODUCED = {0: 7, 1: 5}
CONSUMED = {0: 3, 1: 1}


def _fill(settings, topic: str, counts: dict[int, int], timestamp_ms=None) -> None:
    for partition, count in counts.items():
        messages = [(f"k{i}", f"m{i}".encode(), None) for i in range(count)]
        produce(settings, topic, messages, partition, timestamp_ms)


def _consume_and_commit(settings, group: str, topic: str, counts: dict[int, int]):
    """Consume ``counts`` messages per partition and commit after them."""
    consumer = make_consumer(settings, group)
    consumer.assign([TopicPartition(topic, p, 0) for p in counts])
    seen = {p: 0 for p in counts}
    wait_for(
        lambda: [_take(consumer, seen, counts)] and seen == counts, "consumed messages"
    )
    offsets = [TopicPartition(topic, p, n) for p, n in seen.items()]
    consumer.commit(offsets=offsets, asynchronous=False)
    consumer.close()


def _take(consumer, seen: dict[int, int], counts: dict[int, int]) -> None:
    message = consumer.poll(0.2)
    if message is None or message.error() is not None:
        return
    partition = message.partition()
    if seen[partition] < counts[partition]:
        seen[partition] += 1
    else:
        # Past what this test consumes on that partition: stop fetching it.
        consumer.pause([TopicPartition(message.topic(), partition)])


def test_lag_is_produced_minus_consumed(settings, admin, make_topic, group):
    topic = make_topic("lag", partitions=2)
    _fill(settings, topic, PRODUCED)
    _consume_and_commit(settings, group, topic, CONSUMED)

    figures = {f.partition: f for f in group_lag(admin, group)}

    assert {p: f.lag for p, f in figures.items()} == {
        p: PRODUCED[p] - CONSUMED[p] for p in PRODUCED
    }
    assert {p: f.committed for p, f in figures.items()} == CONSUMED
    assert {p: f.end for p, f in figures.items()} == PRODUCED
    summary = {g.group: g for g in list_groups(admin, group)}[group]
    assert (summary.lag, summary.members, summary.state) == (8, 0, "empty")


def test_lag_exporter_sets_the_gauge_and_drops_partitions_it_no_longer_sees(
    settings, admin, make_topic, group
):
    topic = make_topic("lagexport", partitions=2)
    _fill(settings, topic, PRODUCED)
    _consume_and_commit(settings, group, topic, CONSUMED)

    exporter = LagExporter(settings, group)
    exporter.refresh()

    def sample(partition: int) -> float | None:
        labels = {"group": group, "topic": topic, "partition": str(partition)}
        return REGISTRY.get_sample_value("switchboard_consumer_lag", labels)

    assert (sample(0), sample(1)) == (4.0, 4.0)
    admin.delete_consumer_groups([group])[group].result(30)
    exporter.refresh()
    assert (sample(0), sample(1)) == (None, None)


def test_lag_exporter_can_export_only_its_own_members_partitions(
    settings, make_topic, unique, group
):
    topic = make_topic("lagmine", partitions=2)
    _fill(settings, topic, PRODUCED)
    consumer = joined_consumer(settings, group, topic, f"lagmine-{unique}")
    try:
        mine = LagExporter(settings, group, member_id=consumer.memberid)
        stranger = LagExporter(settings, group, member_id=lambda: "someone-else")

        owned = {(f.topic, f.partition) for f in mine.refresh()}

        assert owned == {(tp.topic, tp.partition) for tp in consumer.assignment()}
        assert stranger.refresh() == []
    finally:
        consumer.close()


def test_describe_names_the_owner_of_each_partition(
    settings, admin, make_topic, unique, group
):
    topic = make_topic("describe", partitions=2)
    _fill(settings, topic, PRODUCED)
    consumer = joined_consumer(settings, group, topic, f"describe-{unique}")
    try:
        detail = describe_group(admin, group)
        result = CliRunner().invoke(app, ["groups", "describe", group, "--json"])
    finally:
        consumer.close()

    assert [m.client_id for m in detail.members] == [f"describe-{unique}"]
    member_id = detail.members[0].member_id
    assert {(p.partition, p.member) for p in detail.partitions} == {
        (0, member_id),
        (1, member_id),
    }
    # Nothing committed yet: the whole of each partition is lag.
    assert sum(p.lag for p in detail.partitions) == sum(PRODUCED.values())
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    assert described["lag"] == 12
    assert described["members"][0]["client_id"] == f"describe-{unique}"


def test_a_members_client_id_names_its_group_host_and_process(
    settings, admin, make_topic, group
):
    topic = make_topic("clientid")
    consumer = make_consumer(settings, group)
    consumer.subscribe([topic])
    wait_for(lambda: consumer.poll(0.2) or consumer.assignment(), "an assignment")
    try:
        detail = describe_group(admin, group)
    finally:
        consumer.close()

    assert [m.client_id for m in detail.members] == [
        f"{group}@{socket.gethostname()}:{os.getpid()}"
    ]


def test_reset_plans_with_a_live_member_but_refuses_to_execute_naming_it(
    settings, admin, make_topic, unique, group
):
    topic = make_topic("resetlive", partitions=2)
    _fill(settings, topic, PRODUCED)
    _consume_and_commit(settings, group, topic, CONSUMED)
    consumer = joined_consumer(settings, group, topic, f"live-{unique}")
    runner = CliRunner()
    try:
        plan = plan_reset(admin, group, ResetTarget.parse("earliest"))
        shown = runner.invoke(app, ["groups", "reset", group, "--to", "earliest"])
        with pytest.raises(GroupActiveError) as refused:
            apply_reset(admin, plan)
        executed = runner.invoke(
            app, ["groups", "reset", group, "--to", "earliest", "--execute"]
        )
    finally:
        consumer.close()

    assert {(m.partition, m.old, m.new) for m in plan.moves} == {(0, 3, 0), (1, 1, 0)}
    assert [m.client_id for m in plan.members] == [f"live-{unique}"]
    assert shown.exit_code == 0, shown.output
    assert "plan only" in shown.output
    assert f"live-{unique}" in shown.output and "stop them before" in shown.output
    assert f"live-{unique}" in str(refused.value)
    assert executed.exit_code == 1
    assert f"live-{unique}" in executed.output
    assert committed(admin, group) == {(topic, 0): 3, (topic, 1): 1}


def test_reset_prints_a_plan_and_applies_it_only_with_execute(
    settings, admin, make_topic, group
):
    topic = make_topic("reset", partitions=2)
    _fill(settings, topic, PRODUCED)
    _consume_and_commit(settings, group, topic, CONSUMED)
    runner = CliRunner()

    planned = runner.invoke(app, ["groups", "reset", group, "--to", "latest", "--json"])
    unchanged = committed(admin, group)
    applied = runner.invoke(
        app, ["groups", "reset", group, "--to", "latest", "--execute", "--json"]
    )

    assert planned.exit_code == 0, planned.output
    moves = json.loads(planned.stdout)["plan"]["moves"]
    assert {(m["partition"], m["old"], m["new"]) for m in moves} == {
        (0, 3, 7),
        (1, 1, 5),
    }
    assert unchanged == {(topic, 0): 3, (topic, 1): 1}
    assert applied.exit_code == 0, applied.output
    assert committed(admin, group) == {(topic, 0): 7, (topic, 1): 5}
    assert sum(f.lag for f in group_lag(admin, group)) == 0


def test_reset_to_a_time_an_offset_or_one_partition(settings, admin, make_topic, group):
    topic = make_topic("resettime", partitions=2)
    early = datetime(2026, 1, 1, tzinfo=UTC)
    late = early + timedelta(hours=1)
    _fill(settings, topic, {0: 4, 1: 4}, int(early.timestamp() * 1000))
    _fill(settings, topic, {0: 2, 1: 2}, int(late.timestamp() * 1000))
    _consume_and_commit(settings, group, topic, {0: 6, 1: 6})

    at_time = plan_reset(admin, group, ResetTarget.parse(late.isoformat()))
    single = plan_reset(
        admin, group, ResetTarget.parse("999"), topic=topic, partition=1
    )
    apply_reset(admin, single)

    assert {(m.partition, m.new) for m in at_time.moves} == {(0, 4), (1, 4)}
    assert [(m.partition, m.old, m.new) for m in single.moves] == [(1, 6, 6)]
    assert "clamped" in single.moves[0].note
    with pytest.raises(OpsError, match="--partition needs --topic"):
        plan_reset(admin, group, ResetTarget.parse("0"), partition=1)
    with pytest.raises(OpsError, match="--to"):
        ResetTarget.parse("yesterday")


def test_a_reset_onto_a_topic_the_group_does_not_read_is_warned_about(
    settings, admin, make_topic, group
):
    read = make_topic("resetread", partitions=1)
    other = make_topic("resetother", partitions=1)
    _fill(settings, read, {0: 2})
    _consume_and_commit(settings, group, read, {0: 2})

    plan = plan_reset(admin, group, ResetTarget.parse("earliest"), topic=other)
    own = plan_reset(admin, group, ResetTarget.parse("earliest"), topic=read)

    assert plan.warnings == [
        f"group {group} has committed offsets on {read} but none on {other}; "
        f"check that it reads {other}"
    ]
    assert own.warnings == []
    with pytest.raises(OpsError, match="none of that name"):
        plan_reset(admin, f"{group}.never", ResetTarget.parse("earliest"))


def test_describing_an_unknown_group_says_so(admin, unique):
    result = CliRunner().invoke(app, ["groups", "describe", f"no.such.{unique}"])

    assert result.exit_code == 1
    assert f"no consumer group no.such.{unique}" in result.output


def test_an_unreachable_broker_is_one_clear_error(unused_port):
    admin = make_admin(Settings(kafka_bootstrap=f"127.0.0.1:{unused_port}"))

    with pytest.raises(OpsError, match="no answer within"):
        list_groups(admin)


def test_the_lag_exporter_outlives_an_unreachable_broker(unused_port):
    dead = Settings(kafka_bootstrap=f"127.0.0.1:{unused_port}")
    exporter = LagExporter(dead, "switchboard.recorder", interval_s=0.2).start()
    try:
        # Long enough for at least one admin request to go unanswered.
        time.sleep(ADMIN_TIMEOUT_S + 3)
        alive = exporter._thread.is_alive()
    finally:
        exporter.stop()

    assert alive


@pytest.fixture
def unused_port():
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
