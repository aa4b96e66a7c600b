"""The deliverer end to end: real broker, real receiver, private topics per test."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer

from services.deliverer.pipeline import HEADER_FINAL, HEADER_REASON
from services.deliverer.redact import REDACTED
from services.receivers.webhook import Reply
from switchboard.kafka import header_value
from tests.deliverer.helpers import (
    SIGNING_SECRET,
    JobEvents,
    TopicReader,
    delete_channel,
    make_command,
    produce_commands,
    publish_webhook_channel,
    states_of,
)


def _tenant() -> str:
    return str(uuid.uuid4())


def _wait_terminal(events: JobEvents, job_ids: set[str], timeout_s: float = 60.0):
    terminal = {"delivered", "dead", "cancelled"}

    def done(all_events: list[dict]) -> bool:
        finished = {e["job_id"] for e in all_events if str(e["state"]) in terminal}
        return job_ids <= finished

    return events.for_jobs(job_ids, events.wait(done, timeout_s))


def test_500_500_200_is_delivered_on_attempt_3_never_early(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness(retry_delays="1s,2s")
    tenant = _tenant()
    channel = publish_webhook_channel(settings, codec, tenant, receiver.url("/flaky"))
    receiver.plan("/flaky", [Reply(500), Reply(500)])
    command = make_command(tenant, channel)

    produce_commands(settings, codec, deliverer.topics.main, [command])
    events = _wait_terminal(
        JobEvents(settings, codec, deliverer.jobs_topic), {command["job_id"]}
    )

    assert states_of(events, command["job_id"]) == [
        ("retrying", 1),
        ("retrying", 2),
        ("delivered", 3),
    ]
    first, second, third = receiver.received("/flaky")
    assert second.received_at - first.received_at >= 1.0
    assert third.received_at - second.received_at >= 2.0
    assert [r.json()["attempt"] for r in (first, second, third)] == [1, 2, 3]
    assert {r.webhook_id for r in (first, second, third)} == {command["job_id"]}
    assert all(r.signature_valid for r in (first, second, third))
    retrying = [e for e in events if str(e["state"]) == "retrying"]
    assert [e["reason"] for e in retrying] == ["http_5xx", "http_5xx"]
    assert all(e["next_attempt_at"] > e["occurred_at"] for e in retrying)


def test_retry_after_30_is_not_retried_before_30_seconds(
    settings, codec, harness, receiver
) -> None:
    """Meanwhile another job's short retry goes through: held partitions only
    hold themselves."""
    deliverer = harness(retry_delays="1s,30s")
    tenant = _tenant()
    busy = publish_webhook_channel(settings, codec, tenant, receiver.url("/busy"))
    flaky = publish_webhook_channel(settings, codec, tenant, receiver.url("/flaky"))
    receiver.plan("/busy", [Reply(429, (("retry-after", "30"),))])
    receiver.plan("/flaky", [Reply(503)])
    command, other = make_command(tenant, busy), make_command(tenant, flaky)

    produce_commands(settings, codec, deliverer.topics.main, [command, other])
    events = _wait_terminal(
        JobEvents(settings, codec, deliverer.jobs_topic),
        {command["job_id"], other["job_id"]},
        90,
    )

    assert states_of(events, command["job_id"]) == [("retrying", 1), ("delivered", 2)]
    first, second = receiver.received("/busy")
    assert second.received_at - first.received_at >= 30.0
    retrying = events[[e["job_id"] for e in events].index(command["job_id"])]
    assert retrying["reason"] == "http_429"
    wait = retrying["next_attempt_at"] - retrying["occurred_at"]
    assert wait.total_seconds() >= 30.0
    assert states_of(events, other["job_id"]) == [("retrying", 1), ("delivered", 2)]
    assert receiver.received("/flaky")[-1].received_at < second.received_at


def test_permanent_400_is_dead_at_once_and_dead_lettered(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness()
    tenant = _tenant()
    channel = publish_webhook_channel(settings, codec, tenant, receiver.url("/bad"))
    receiver.plan("/bad", [], then=Reply(400, body=b"unknown field"))
    command = make_command(tenant, channel)

    produce_commands(settings, codec, deliverer.topics.main, [command])
    events = _wait_terminal(
        JobEvents(settings, codec, deliverer.jobs_topic), {command["job_id"]}
    )

    assert states_of(events, command["job_id"]) == [("dead", 1)]
    assert events[0]["status_code"] == 400
    assert "unknown field" in events[0]["error"]
    assert len(receiver.received("/bad")) == 1
    [dead] = TopicReader(settings, deliverer.topics.dlq).wait_until(
        lambda m: len(m) >= 1
    )
    assert codec.decode("DeliveryCommand", dead.value())["job_id"] == command["job_id"]
    assert header_value(dead, HEADER_REASON) == "http_4xx"
    assert header_value(dead, HEADER_FINAL) == "permanent"


def test_last_attempt_goes_dead_with_max_attempts(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness(retry_delays="1s", max_attempts=2)
    tenant = _tenant()
    channel = publish_webhook_channel(settings, codec, tenant, receiver.url("/down"))
    receiver.plan("/down", [], then=Reply(503))
    command = make_command(tenant, channel)

    produce_commands(settings, codec, deliverer.topics.main, [command])
    events = _wait_terminal(
        JobEvents(settings, codec, deliverer.jobs_topic), {command["job_id"]}
    )

    assert states_of(events, command["job_id"]) == [("retrying", 1), ("dead", 2)]
    [dead] = TopicReader(settings, deliverer.topics.dlq).wait_until(
        lambda m: len(m) >= 1
    )
    assert header_value(dead, HEADER_FINAL) == "max_attempts"
    assert header_value(dead, HEADER_REASON) == "http_5xx"


def test_a_hanging_endpoint_is_cut_at_its_deadline_while_others_deliver(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness(retry_delays="30s")
    tenant = _tenant()
    hanging = publish_webhook_channel(
        settings, codec, tenant, receiver.url("/hang"), timeout_s=2.0
    )
    fast = [
        publish_webhook_channel(settings, codec, tenant, receiver.url(f"/fast{i}"))
        for i in range(2)
    ]
    receiver.plan("/hang", [], then=Reply(200, delay_s=20))
    stuck = [make_command(tenant, hanging) for _ in range(3)]
    flowing = [make_command(tenant, channel) for channel in fast for _ in range(10)]

    produce_commands(settings, codec, deliverer.topics.main, stuck + flowing)
    job_ids = {c["job_id"] for c in stuck + flowing}
    events = _wait_terminal_or_retrying(
        JobEvents(settings, codec, deliverer.jobs_topic), job_ids
    )

    timeouts = [e for e in events if e["job_id"] in {c["job_id"] for c in stuck}]
    assert [(str(e["state"]), e["reason"]) for e in timeouts] == [
        ("retrying", "timeout")
    ] * 3
    assert all(e["duration_ms"] >= 2000 for e in timeouts)
    delivered = [e for e in events if str(e["state"]) == "delivered"]
    assert len(delivered) == len(flowing)
    assert max(e["occurred_at"] for e in delivered) <= min(
        e["occurred_at"] for e in timeouts
    )


def _wait_terminal_or_retrying(events: JobEvents, job_ids: set[str]) -> list[dict]:
    def done(all_events: list[dict]) -> bool:
        return job_ids <= {e["job_id"] for e in all_events}

    return events.for_jobs(job_ids, events.wait(done))


def test_disabled_and_deleted_channels_cancel_their_jobs(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness()
    tenant = _tenant()
    disabled = publish_webhook_channel(
        settings, codec, tenant, receiver.url(), enabled=False
    )
    deleted = publish_webhook_channel(settings, codec, tenant, receiver.url())
    delete_channel(settings, deleted)
    commands = [make_command(tenant, disabled), make_command(tenant, deleted)]

    produce_commands(settings, codec, deliverer.topics.main, commands)
    events = _wait_terminal(
        JobEvents(settings, codec, deliverer.jobs_topic),
        {c["job_id"] for c in commands},
    )

    by_job = {e["job_id"]: e for e in events}
    assert by_job[commands[0]["job_id"]]["reason"] == "channel_disabled"
    assert by_job[commands[1]["job_id"]]["reason"] == "channel_gone"
    assert {str(e["state"]) for e in events} == {"cancelled"}
    assert receiver.received() == []


def test_undecodable_and_wrong_type_commands_are_dead_lettered(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness()
    tenant = _tenant()
    channel = publish_webhook_channel(settings, codec, tenant, receiver.url())
    wrong = make_command(tenant, channel) | {"channel_type": "slack"}
    good = make_command(tenant, channel)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(deliverer.topics.main, b"\x00not avro", channel)
    producer.flush(30)

    produce_commands(settings, codec, deliverer.topics.main, [wrong, good])
    events = _wait_terminal(
        JobEvents(settings, codec, deliverer.jobs_topic),
        {wrong["job_id"], good["job_id"]},
    )

    assert states_of(events, good["job_id"]) == [("delivered", 1)]
    assert states_of(events, wrong["job_id"]) == [("dead", 1)]
    dead = TopicReader(settings, deliverer.topics.dlq).wait_until(lambda m: len(m) >= 2)
    assert sorted(header_value(m, HEADER_REASON) for m in dead) == [
        "undecodable",
        "wrong_channel_type",
    ]
    assert [r.webhook_id for r in receiver.received()] == [good["job_id"]]


def test_secrets_are_redacted_from_job_events_and_dead_letters(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness()
    tenant = _tenant()
    channel = publish_webhook_channel(settings, codec, tenant, receiver.url("/echo"))
    receiver.plan("/echo", [Reply(401, body=f"bad secret {SIGNING_SECRET}".encode())])
    command = make_command(tenant, channel)

    produce_commands(settings, codec, deliverer.topics.main, [command])
    [event] = _wait_terminal(
        JobEvents(settings, codec, deliverer.jobs_topic), {command["job_id"]}
    )

    assert SIGNING_SECRET not in event["error"]
    assert SIGNING_SECRET.removeprefix("whsec_") not in event["error"]
    assert REDACTED in event["error"]
    [dead] = TopicReader(settings, deliverer.topics.dlq).wait_until(
        lambda m: len(m) >= 1
    )
    assert all(SIGNING_SECRET.encode() not in (v or b"") for _, v in dead.headers())
