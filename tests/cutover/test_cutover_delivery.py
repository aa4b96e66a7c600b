"""Converted channels deliver: their types' own senders use what the cutover wrote.

Old webhook and MQTT integrations point at real local peers (a signature-checking
HTTP receiver and the shared Mosquitto with password authentication). After the
cutover, each channel is resolved the way a deliverer resolves it (config model,
decrypted secrets) and sent through its type's ``Sender``. The webhook's
signature must verify with the old secret's bytes; the MQTT message must reach
the old topic with the old credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from cutover_fixture import LEGACY_SCHEMA
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.cutover.run import run_cutover
from services.deliverer.channels import CHANNEL_SPECS, sender_class
from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.outcome import OutcomeKind
from services.receivers.mqtt import MqttRecorder
from services.receivers.webhook import WebhookReceiver
from switchboard import db
from switchboard.domain import ChannelType
from switchboard.jobs import new_command
from switchboard.secrets import SecretBox
from switchboard.settings import Settings

OLD_SECRET = "old-system-hmac-key-for-cutover!"
MQTT_PORT, MQTT_USER, MQTT_PASSWORD = 11884, "switchboard", "switchboard-mqtt"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def old_installation(url: str, tenant: str, webhook_url: str, topic: str) -> None:
    integrations = [
        ("webhook", {"url": webhook_url, "secret": OLD_SECRET}),
        (
            "mqtt",
            {
                "broker_host": "127.0.0.1",
                "broker_port": MQTT_PORT,
                "topic": topic,
                "qos": 1,
                "username": MQTT_USER,
                "password": MQTT_PASSWORD,
            },
        ),
    ]
    with psycopg.connect(url) as conn:
        conn.execute(LEGACY_SCHEMA)
        for kind, config in integrations:
            conn.execute(
                "INSERT INTO integrations (id, tenant_id, name, type, config)"
                " VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), tenant, f"old {kind}", kind, Jsonb(config)),
            )


def resolved(url: str, box: SecretBox) -> dict[str, ResolvedChannel]:
    """Every channel as a deliverer resolves it, by type."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM notification_channels").fetchall()
    channels = {}
    for row in rows:
        spec = CHANNEL_SPECS[ChannelType(row["channel_type"])]
        secrets = (
            box.decrypt(row["secrets_encrypted"]) if row["secrets_encrypted"] else {}
        )
        channels[row["channel_type"]] = ResolvedChannel(
            id=str(row["id"]),
            tenant_id=str(row["tenant_id"]),
            name=row["name"],
            channel_type=row["channel_type"],
            enabled=row["enabled"],
            config=spec.config_model.model_validate(row["config"]),
            secrets=spec.secrets_model.model_validate(secrets),
        )
    return channels


def command_for(channel: ResolvedChannel) -> dict[str, Any]:
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": channel.tenant_id,
        "alert_id": "after-cutover",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": "site-a",
        "device_id": "core-1",
        "summary": "first alert after the cutover",
        "details": None,
        "labels": {},
        "occurred_at": datetime.now(UTC).replace(microsecond=0),
        "source": "tests",
    }
    return new_command(alert, channel.id, channel.channel_type, None)


async def send(settings: Settings, command: dict, channel: ResolvedChannel) -> Any:
    sender = sender_class(channel.channel_type)(settings)
    try:
        return await sender.send(command, channel)
    finally:
        await sender.close()


async def test_converted_webhook_and_mqtt_channels_deliver(
    scratch_database: str, settings: Settings, receiver: WebhookReceiver, unique: str
) -> None:
    db.migrate(scratch_database)
    topic = f"cutover/{unique}/alerts"
    old_installation(scratch_database, str(uuid.uuid4()), receiver.url("/old"), topic)
    local = settings.model_copy(
        update={"database_url": scratch_database, "allow_private_targets": True}
    )
    result = run_cutover(local, apply=True)
    assert result.applied is not None and result.applied.channels == 2
    channels = resolved(scratch_database, SecretBox.from_settings(local))

    webhook = channels["webhook"]
    outcome = await send(local, command_for(webhook), webhook)
    assert outcome.kind is OutcomeKind.DELIVERED
    request = receiver.wait_for(1, "/old")[0]
    signed = b".".join(
        [
            request.headers["webhook-id"].encode(),
            request.headers["webhook-timestamp"].encode(),
            request.body,
        ]
    )
    expected = base64.b64encode(
        hmac.new(OLD_SECRET.encode(), signed, hashlib.sha256).digest()
    ).decode()
    assert f"v1,{expected}" in request.headers["webhook-signature"].split()

    mqtt = channels["mqtt"]
    async with MqttRecorder(
        topic,
        hostname="127.0.0.1",
        port=MQTT_PORT,
        username=MQTT_USER,
        password=MQTT_PASSWORD,
    ) as recorder:
        outcome = await send(local, command_for(mqtt), mqtt)
        assert outcome.kind is OutcomeKind.DELIVERED
        messages = await recorder.wait_for(1)
    assert messages[0].topic == topic
    assert b"first alert after the cutover" in messages[0].payload
