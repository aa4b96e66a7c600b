"""Converted channels deliver: their types' own senders use what the cutover wrote.

Old webhook, MQTT, email and SNMP integrations point at real local peers (a
signature-checking HTTP receiver, the shared Mosquitto with password
authentication, aiosmtpd, snmptrapd). After the cutover, each channel is
resolved the way a deliverer resolves it (config model, decrypted secrets) and
sent through its type's ``Sender``. The webhook's signature must verify with the
old secret's bytes, the MQTT message must reach the old topic with the old
credentials, the mail the old recipients and the trap the old community.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
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
from services.receivers.smtp import SmtpReceiver
from services.receivers.snmp import TrapReceiver
from services.receivers.webhook import WebhookReceiver
from switchboard import db
from switchboard.domain import ChannelType
from switchboard.jobs import new_command
from switchboard.secrets import SecretBox
from switchboard.settings import Settings
from switchboard.stack import MQTT_TEST_PASSWORD, MQTT_TEST_USERNAME, mqtt_auth_port

OLD_SECRET = "old-system-hmac-key-for-cutover!"
# The local stack's Mosquitto listener that requires a password.
MQTT_PORT = mqtt_auth_port(Settings())
MQTT_USER, MQTT_PASSWORD = MQTT_TEST_USERNAME, MQTT_TEST_PASSWORD


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def old_installation(url: str, integrations: list[tuple[str, dict]]) -> None:
    """The old tables in ``url`` with ``integrations`` (type, config) of one tenant."""
    tenant = uuid.uuid4()
    with psycopg.connect(url) as conn:
        conn.execute(LEGACY_SCHEMA)
        for kind, config in integrations:
            conn.execute(
                "INSERT INTO integrations (id, tenant_id, name, type, config)"
                " VALUES (%s, %s, %s, %s, %s)",
                (uuid.uuid4(), tenant, f"old {kind}", kind, Jsonb(config)),
            )


OLD_AUTHORIZATION = "Bearer old-hook-t0ken"


def web_and_mqtt(webhook_url: str, topic: str) -> list[tuple[str, dict]]:
    return [
        (
            "webhook",
            {
                "url": webhook_url,
                "secret": OLD_SECRET,
                "headers": {"X-Team": "noc", "Authorization": OLD_AUTHORIZATION},
            },
        ),
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


def converted(
    url: str, settings: Settings, integrations: list[tuple[str, dict]]
) -> tuple[Settings, dict[str, ResolvedChannel]]:
    """Run the cutover over ``integrations``; settings and channels by type."""
    db.migrate(url)
    old_installation(url, integrations)
    local = settings.model_copy(
        update={"database_url": url, "allow_private_targets": True}
    )
    result = run_cutover(local, apply=True)
    assert result.applied is not None
    assert result.applied.channels == len(integrations), result.plan.unconvertible
    return local, resolved(url, SecretBox.from_settings(local))


async def test_converted_webhook_and_mqtt_channels_deliver(
    scratch_database: str, settings: Settings, receiver: WebhookReceiver, unique: str
) -> None:
    topic = f"cutover/{unique}/alerts"
    local, channels = converted(
        scratch_database, settings, web_and_mqtt(receiver.url("/old"), topic)
    )

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
    # The credential header now travels from the encrypted secret headers.
    assert request.headers["authorization"] == OLD_AUTHORIZATION
    assert request.headers["x-team"] == "noc"

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


async def test_converted_email_and_snmp_channels_deliver(
    scratch_database: str, settings: Settings, tmp_path: Path
) -> None:
    smtp = SmtpReceiver().start()
    traps = TrapReceiver(tmp_path / "snmptrapd", communities=("old-community",))
    traps.start()
    try:
        local, channels = converted(
            scratch_database,
            settings,
            [
                (
                    "email",
                    {
                        "smtp_host": "127.0.0.1",
                        "smtp_port": smtp.port,
                        "smtp_tls": False,
                        "from_address": "old@example.com",
                        "recipients": "noc@example.com, oncall@example.com",
                    },
                ),
                (
                    "snmp",
                    {
                        "host": "127.0.0.1",
                        "port": traps.port,
                        "version": "2c",
                        "community": "old-community",
                    },
                ),
            ],
        )
        for kind in ("email", "snmp"):
            outcome = await send(local, command_for(channels[kind]), channels[kind])
            assert outcome.kind is OutcomeKind.DELIVERED, outcome
        trap = traps.wait_for(1)[0]
    finally:
        smtp.stop()
        traps.stop()

    message = smtp.messages[0]
    assert message.rcpt_tos == ["noc@example.com", "oncall@example.com"]
    assert b"first alert after the cutover" in message.data
    assert "old-community" in trap.security
