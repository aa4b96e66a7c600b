"""Jobs: filters, cursor paging, attempts in order, retry of a dead job, tests.

The recorder owns the job tables; these tests write rows directly, each under a
fresh tenant, and read what the API produces from the real topics.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from api_support import CHANNELS, JOBS, TenantKey
from confluent_kafka import Consumer, TopicPartition

from services.api.relay import OutboxRelay
from switchboard.codec import Codec, CodecError
from switchboard.settings import Settings
from switchboard.topics import JOBS_TOPIC, delivery_topic

START = datetime(2026, 1, 1, tzinfo=UTC)


def _alert(tenant: TenantKey, alert_id: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": str(tenant.id),
        "alert_id": alert_id,
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": "ams-1",
        "device_id": "core-1",
        "summary": "Link down on core-1",
        "details": None,
        "labels": {"team": "noc"},
        "occurred_at": START.isoformat(),
        "source": "monitoring",
    }


def insert_job(
    conn: psycopg.Connection,
    tenant: TenantKey,
    *,
    state: str = "delivered",
    minute: int = 0,
    channel_id: uuid.UUID | None = None,
    rule_id: uuid.UUID | None = None,
    alert_id: str = "a-1",
    attempts: int = 1,
) -> uuid.UUID:
    """A job row as the recorder would write it."""
    job_id = uuid.uuid4()
    alert = _alert(tenant, alert_id)
    created = START + timedelta(minutes=minute)
    conn.execute(
        "INSERT INTO notification_jobs (job_id, tenant_id, channel_id, rule_id,"
        " channel_type, event_id, alert_id, event_kind, severity, state, attempts,"
        " state_attempt, state_rank, event_occurred_at, created_at, updated_at, alert)"
        " VALUES (%s, %s, %s, %s, 'webhook', %s, %s, 'OPEN', 'HIGH', %s, %s, %s, 2,"
        " %s, %s, %s, %s)",
        (
            job_id,
            tenant.id,
            channel_id or uuid.uuid4(),
            rule_id,
            alert["event_id"],
            alert_id,
            state,
            attempts,
            attempts,
            START,
            created,
            created,
            json.dumps(alert),
        ),
    )
    return job_id


def test_filters_and_cursor_paging(tenant: TenantKey, conn: psycopg.Connection) -> None:
    channel = uuid.uuid4()
    ids = [
        insert_job(conn, tenant, minute=m, channel_id=channel if m % 2 else None)
        for m in range(7)
    ]
    dead = insert_job(conn, tenant, state="dead", minute=10, alert_id="a-2")

    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = tenant.client.get(JOBS, params=params).json()
        seen += [item["job_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [str(i) for i in [dead, *reversed(ids)]]

    def only(**params: object) -> list[str]:
        response = tenant.client.get(JOBS, params=params)
        assert response.status_code == 200, response.text
        return [item["job_id"] for item in response.json()["items"]]

    assert only(state="dead") == [str(dead)]
    assert only(status="dead") == [str(dead)], "the deprecated alias still filters"
    assert only(state="dead", status="dead") == [str(dead)]
    assert only(alert_id="a-2") == [str(dead)]
    assert only(channel_id=str(channel)) == [str(i) for i in reversed(ids[1::2])]
    since, until = (START + timedelta(minutes=2)), (START + timedelta(minutes=4))
    assert only(since=since.isoformat(), until=until.isoformat()) == [
        str(ids[3]),
        str(ids[2]),
    ]


def forged_cursor(parts: object) -> str:
    """A cursor in the API's encoding around ``parts`` it never returns."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"state": "lost"}, "state"),
        ({"state": "dead", "status": "queued"}, "status"),
        ({"sate": "dead"}, "sate"),
        ({"cursor": "!!!"}, "cursor"),
        ({"cursor": forged_cursor(["2026-01-01", 1])}, "cursor"),
        ({"cursor": forged_cursor([1, str(uuid.uuid4())])}, "cursor"),
        ({"cursor": forged_cursor({"a": 1, "b": 2})}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"channel_id": "x"}, "channel_id"),
        ({"alert_id": "a\x00"}, "alert_id"),
    ],
)
def test_bad_filters_are_named(tenant: TenantKey, params: dict, field: str) -> None:
    response = tenant.client.get(JOBS, params=params)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field


def test_one_job_with_its_attempts_in_order(
    tenant: TenantKey, other_tenant: TenantKey, conn: psycopg.Connection
) -> None:
    job_id = insert_job(conn, tenant, state="delivered", attempts=2)
    for attempt, state, second in ((2, "delivered", 3), (1, "retrying", 1)):
        conn.execute(
            "INSERT INTO notification_log (job_id, attempt, state, status_code,"
            " occurred_at) VALUES (%s, %s, %s, 200, %s)",
            (job_id, attempt, state, START + timedelta(seconds=second)),
        )

    body = tenant.client.get(f"{JOBS}/{job_id}").json()

    assert [(a["attempt"], a["state"]) for a in body["log"]] == [
        (1, "retrying"),
        (2, "delivered"),
    ]
    assert other_tenant.client.get(f"{JOBS}/{job_id}").status_code == 404
    assert other_tenant.client.get(JOBS).json()["items"] == []


def _consumer_at_end(settings: Settings, topics: list[str]) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test.api.{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    assignment = []
    for topic in topics:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        for partition in partitions:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            assignment.append(TopicPartition(topic, partition, high))
    consumer.assign(assignment)
    return consumer


def _read_job(consumer: Consumer, codec: Codec, job_id: str) -> dict[str, dict]:
    """The job event and command of ``job_id`` produced after the consumer's start."""
    found: dict[str, dict] = {}
    for _ in range(100):
        for message in consumer.consume(100, timeout=0.5):
            if message.error():
                continue
            record = "JobEvent" if message.topic() == JOBS_TOPIC else "DeliveryCommand"
            try:
                value = codec.decode(record, message.value())
            except CodecError:
                continue  # another test's message on a shared topic
            if value["job_id"] == job_id:
                # The first is ours; a running deliverer may add outcomes after it.
                found.setdefault(record, value)
        if len(found) == 2:
            return found
    return found


def test_retry_requeues_a_dead_job_with_the_next_attempt(
    settings: Settings, codec: Codec, tenant: TenantKey, conn: psycopg.Connection
) -> None:
    job_id = insert_job(conn, tenant, state="dead", attempts=6)
    consumer = _consumer_at_end(settings, [JOBS_TOPIC, delivery_topic("webhook")])

    response = tenant.client.post(f"{JOBS}/{job_id}/retry")

    assert response.status_code == 202, response.text
    assert response.json() == {"job_id": str(job_id), "attempt": 7}
    found = _read_job(consumer, codec, str(job_id))
    consumer.close()
    assert found["JobEvent"]["state"] == "queued"
    assert found["JobEvent"]["attempt"] == 7
    assert found["DeliveryCommand"]["attempt"] == 7
    assert found["DeliveryCommand"]["alert"]["summary"] == "Link down on core-1"
    assert found["DeliveryCommand"]["alert"]["labels"] == {"team": "noc"}


def test_a_retry_already_queued_is_not_queued_again(
    tenant: TenantKey, conn: psycopg.Connection
) -> None:
    # The row stays dead until the recorder has read the first retry.
    job_id = insert_job(conn, tenant, state="dead", attempts=2)

    first = tenant.client.post(f"{JOBS}/{job_id}/retry")
    second = tenant.client.post(f"{JOBS}/{job_id}/retry")

    assert first.status_code == 202, first.text
    assert second.status_code == 409, second.text
    assert second.json()["detail"][0]["field"] == "job_id"
    assert "already queued" in second.json()["detail"][0]["problem"]


def test_only_dead_jobs_can_be_retried(
    tenant: TenantKey, other_tenant: TenantKey, conn: psycopg.Connection
) -> None:
    delivered = insert_job(conn, tenant, state="delivered")
    dead = insert_job(conn, tenant, state="dead")

    refused = tenant.client.post(f"{JOBS}/{delivered}/retry")

    assert refused.status_code == 409
    assert refused.json()["detail"][0]["field"] == "job_id"
    assert other_tenant.client.post(f"{JOBS}/{dead}/retry").status_code == 404


def test_test_notification_goes_through_the_pipeline(
    settings: Settings,
    codec: Codec,
    tenant: TenantKey,
    relays: Callable[[], OutboxRelay],
) -> None:
    relays()
    channel = tenant.create_channel()
    consumer = _consumer_at_end(settings, [JOBS_TOPIC, delivery_topic("webhook")])

    response = tenant.client.post(f"{CHANNELS}/{channel['id']}/test")

    assert response.status_code == 202, response.text
    found = _read_job(consumer, codec, response.json()["job_id"])
    consumer.close()
    command = found["DeliveryCommand"]
    assert command["is_test"] is True
    assert command["rule_id"] is None
    assert command["channel_id"] == channel["id"]
    assert command["alert"]["alert_type"] == "test"
    assert command["alert"]["event_id"] == response.json()["event_id"]
    assert found["JobEvent"]["state"] == "queued"


@pytest.mark.parametrize(
    "path",
    [JOBS, "/customer/notification-channels", "/customer/notification-routing-rules"],
)
def test_an_unknown_query_parameter_is_named_not_ignored(
    tenant: TenantKey, path: str
) -> None:
    response = tenant.client.get(path, params={"limit": 5, "chanel_id": "x"})

    assert response.status_code == 422, response.text
    problems = {p["field"]: p["problem"] for p in response.json()["detail"]}
    assert "chanel_id" in problems
    assert problems["chanel_id"].startswith("unknown query parameter")
    if path == JOBS:
        assert set(problems) == {"chanel_id"}
        assert "channel_id" in problems["chanel_id"]


def test_the_openapi_document_names_state_and_marks_status_deprecated(
    tenant: TenantKey,
) -> None:
    document = tenant.client.get("/openapi.json").json()
    parameters = {p["name"]: p for p in document["paths"][JOBS]["get"]["parameters"]}

    assert "deprecated" not in parameters["state"]
    assert parameters["status"]["deprecated"] is True
    assert "alias of `state`" in parameters["status"]["description"]
