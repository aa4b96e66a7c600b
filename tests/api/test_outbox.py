"""The outbox and its relay: every change reaches notify.config, in order, once
the relay has run, across restarts and with two relays; a running router uses a
rule changed through the API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from api_support import CHANNELS, RULES, TenantKey
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.api.relay import OutboxRelay
from switchboard.codec import Codec
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC

WAIT_S = 60.0


def wait_for(
    condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


class ConfigReader:
    """Reads notify.config from the end it had when created, keeping our keys."""

    def __init__(self, settings: Settings, keys: Callable[[], set[str]]) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"test.api.{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        _low, high = self._consumer.get_watermark_offsets(
            TopicPartition(CONFIG_TOPIC, 0), timeout=10
        )
        self._consumer.assign([TopicPartition(CONFIG_TOPIC, 0, high)])
        self._keys = keys
        self.messages: list[tuple[str, bytes | None]] = []

    def read(self) -> list[tuple[str, bytes | None]]:
        """Every message so far under one of our keys, in topic order."""
        for message in self._consumer.consume(500, timeout=0.2):
            if message.error() is None:
                key = message.key().decode()
                if key in self._keys():
                    self.messages.append((key, message.value()))
        return self.messages

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()


def _outbox(conn: psycopg.Connection, keys: set[str]) -> list[tuple[int, str, bool]]:
    rows = conn.execute(
        "SELECT id, message_key, published_at IS NOT NULL FROM config_outbox"
        " WHERE message_key = ANY(%s) ORDER BY id",
        (list(keys),),
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def _outbox_id(codec: Codec, value: bytes | None) -> int | None:
    return None if value is None else codec.decode("ConfigEvent", value)["outbox_id"]


def test_every_write_is_in_the_outbox_with_tombstones_for_cascaded_rules(
    tenant: TenantKey, conn: psycopg.Connection, codec: Codec
) -> None:
    channel = tenant.create_channel()
    rule = tenant.client.post(
        RULES, json={"channel_id": channel["id"], "name": "r"}
    ).json()
    tenant.client.patch(f"{CHANNELS}/{channel['id']}", json={"name": "renamed"})
    tenant.client.delete(f"{CHANNELS}/{channel['id']}")
    keys = {f"channel:{channel['id']}", f"rule:{rule['id']}"}

    rows = conn.execute(
        "SELECT id, message_key, payload FROM config_outbox"
        " WHERE message_key = ANY(%s) ORDER BY id",
        (list(keys),),
    ).fetchall()

    assert [(key, payload is None) for _id, key, payload in rows] == [
        (f"channel:{channel['id']}", False),
        (f"rule:{rule['id']}", False),
        (f"channel:{channel['id']}", False),
        (f"rule:{rule['id']}", True),
        (f"channel:{channel['id']}", True),
    ]
    for outbox_id, _key, payload in rows:
        assert _outbox_id(codec, payload) in (None, outbox_id)
    renamed = codec.decode("ConfigEvent", rows[2][2])["channel"]
    assert renamed["name"] == "renamed"
    assert tenant.client.get(f"{RULES}/{rule['id']}").status_code == 404


def test_a_failed_write_leaves_no_outbox_row(
    tenant: TenantKey, other_tenant: TenantKey, conn: psycopg.Connection
) -> None:
    channel = tenant.create_channel()
    before = _outbox(conn, {f"channel:{channel['id']}"})

    refused = other_tenant.client.patch(
        f"{CHANNELS}/{channel['id']}", json={"name": "x"}
    )
    invalid = tenant.client.patch(
        f"{CHANNELS}/{channel['id']}", json={"config": {"url": "http://10.0.0.1/"}}
    )

    assert (refused.status_code, invalid.status_code) == (404, 422)
    assert _outbox(conn, {f"channel:{channel['id']}"}) == before


def test_relay_publishes_in_order_and_marks_rows_published(
    settings: Settings,
    tenant: TenantKey,
    conn: psycopg.Connection,
    codec: Codec,
    relays: Callable[[], OutboxRelay],
) -> None:
    keys: set[str] = set()
    reader = ConfigReader(settings, lambda: keys)
    channel = tenant.create_channel()
    keys.add(f"channel:{channel['id']}")
    for index in range(5):
        tenant.client.patch(f"{CHANNELS}/{channel['id']}", json={"name": f"n{index}"})

    relays()
    wait_for(lambda: len(reader.read()) >= 6, "six changes on notify.config")
    wait_for(lambda: all(p for _i, _k, p in _outbox(conn, keys)), "rows marked")
    reader.close()

    ids = [_outbox_id(codec, value) for _key, value in reader.messages]
    assert ids == sorted(ids)
    assert ids[-6:] == [row[0] for row in _outbox(conn, keys)]
    last = codec.decode("ConfigEvent", reader.messages[-1][1])["channel"]
    assert last["name"] == "n4"


def test_two_relays_never_reorder_and_a_restart_loses_nothing(
    settings: Settings,
    tenant: TenantKey,
    conn: psycopg.Connection,
    codec: Codec,
    relays: Callable[[], OutboxRelay],
) -> None:
    keys: set[str] = set()
    reader = ConfigReader(settings, lambda: keys)
    first, _second = relays(), relays()
    channel = tenant.create_channel()
    keys.add(f"channel:{channel['id']}")
    for index in range(10):
        tenant.client.patch(f"{CHANNELS}/{channel['id']}", json={"name": f"a{index}"})
        if index == 4:
            first.stop()  # the leader goes away mid-stream; the other takes over
    relays()  # and a restarted one joins

    wait_for(lambda: all(p for _i, _k, p in _outbox(conn, keys)), "rows published")
    expected = [row[0] for row in _outbox(conn, keys)]
    wait_for(
        lambda: [_outbox_id(codec, v) for _k, v in reader.read()][-1:] == expected[-1:],
        "the last change on notify.config",
    )
    reader.close()

    ids = [_outbox_id(codec, value) for _key, value in reader.messages]
    assert ids == sorted(ids), "published out of order"
    assert set(expected) <= set(ids), "a change was lost"


def _create_topics(admin: AdminClient, specs: dict[str, tuple[int, dict]]) -> None:
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, config=c) for name, (n, c) in specs.items()]
    )
    for future in futures.values():
        future.result(30)


@pytest.fixture
def router_process(
    settings: Settings, admin: AdminClient, unique: str
) -> Iterator[dict[str, str]]:
    """A `switchboard router` subprocess on private topics; yields the topic names."""
    if shutil.which("switchboard", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("the switchboard command is not installed")
    base = f"test.api.{unique}"
    topics = {
        "alerts": f"{base}.alerts",
        "throttle": f"{base}.throttle",
        "jobs": f"{base}.jobs",
        "dlq": f"{base}.dlq",
        "delivery": f"{base}.delivery.webhook",
    }
    _create_topics(
        admin,
        {
            topics["alerts"]: (1, {}),
            topics["throttle"]: (1, {"cleanup.policy": "compact"}),
            topics["jobs"]: (1, {}),
            topics["dlq"]: (1, {}),
            topics["delivery"]: (1, {}),
        },
    )
    env = os.environ | {
        "SWITCHBOARD_ROUTER_JOBS_TOPIC": topics["jobs"],
        "SWITCHBOARD_ROUTER_THROTTLE_TOPIC": topics["throttle"],
        "SWITCHBOARD_ROUTER_DLQ_TOPIC": topics["dlq"],
        "SWITCHBOARD_ROUTER_DELIVERY_TOPIC_PREFIX": f"{base}.delivery.",
    }
    command = [
        os.path.join(os.path.dirname(sys.executable), "switchboard"),
        "router",
        "--alerts-topic",
        topics["alerts"],
        "--group",
        f"{base}.router",
        "--transactional-id",
        f"{base}.router",
        "--metrics-port",
        "0",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        yield topics
    finally:
        process.terminate()
        process.wait(timeout=30)
        admin.delete_topics(list(topics.values()), operation_timeout=30)


def _alert(tenant_id: str, alert_type: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": "a-1",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": alert_type,
        "site_id": None,
        "device_id": None,
        "summary": "s",
        "details": None,
        "labels": {},
        "occurred_at": datetime.now(UTC),
        "source": "tests",
    }


def test_a_running_router_uses_a_rule_changed_through_the_api(
    settings: Settings,
    tenant: TenantKey,
    codec: Codec,
    relays: Callable[[], OutboxRelay],
    router_process: dict[str, str],
) -> None:
    relays()
    channel = tenant.create_channel()
    rule = tenant.client.post(
        RULES, json={"channel_id": channel["id"], "name": "r", "alert_types": ["x"]}
    ).json()
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    commands = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test.api.{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    commands.subscribe([router_process["delivery"]])
    routed: set[str] = set()

    def send(alert_type: str) -> str:
        alert = _alert(str(tenant.id), alert_type)
        producer.produce(
            router_process["alerts"],
            key=f"{tenant.id}/a-1",
            value=codec.encode("AlertEvent", alert),
        )
        producer.flush(10)
        return alert["event_id"]

    def collect() -> None:
        for message in commands.consume(100, timeout=0.5):
            if message.error() is None:
                command = codec.decode("DeliveryCommand", message.value())
                routed.add(command["alert"]["event_id"])

    def send_until_routed(alert_type: str) -> None:
        sent: list[str] = []

        def any_routed() -> bool:
            sent.append(send(alert_type))
            collect()
            return bool(routed.intersection(sent))

        wait_for(any_routed, f"a command for alert type {alert_type}", timeout_s=90)

    send_until_routed("x")
    changed = tenant.client.patch(f"{RULES}/{rule['id']}", json={"alert_types": ["y"]})
    assert changed.status_code == 200
    send_until_routed("y")

    # The router has the change now: an "x" event is no longer routed, which the
    # "y" event behind it on the same partition proves once it comes out.
    stale, marker = send("x"), send("y")
    wait_for(lambda: collect() or marker in routed, "the marker event's command")
    commands.close()
    assert stale not in routed


def test_published_rows_are_purged_after_the_retention(
    settings: Settings, conn: psycopg.Connection, unique: str
) -> None:
    old, recent, pending = (
        conn.execute(
            "INSERT INTO config_outbox (message_key, payload, published_at)"
            " VALUES (%s, NULL, %s) RETURNING id",
            (f"channel:purge-{unique}", published_at),
        ).fetchone()[0]
        for published_at in (
            datetime.now(UTC) - timedelta(days=30),
            datetime.now(UTC),
            None,
        )
    )
    try:
        OutboxRelay.purge_published(conn)

        left = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM config_outbox WHERE id = ANY(%s)",
                ([old, recent, pending],),
            )
        }
        assert left == {recent, pending}
    finally:
        conn.execute(
            "DELETE FROM config_outbox WHERE id = ANY(%s)", ([recent, pending],)
        )
