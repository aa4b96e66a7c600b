"""The MQTT sender against real Mosquitto brokers: QoS, retain, auth, restarts, TLS."""

from __future__ import annotations

import json
import logging

import pytest

from services.deliverer.channels.mqtt.sender import Sender
from services.deliverer.outcome import OutcomeKind, Reason
from services.receivers.mqtt import MosquittoBroker, MqttRecorder, UnacknowledgingBroker
from services.receivers.smtp import free_tcp_port
from switchboard.settings import Settings
from switchboard.stack import MQTT_TEST_PASSWORD, MQTT_TEST_USERNAME, mqtt_auth_port
from tests.deliverer.channels.vendor_channels import private_hosts

# The stack's Mosquitto (both listeners) is up once the settings fixture ran.
pytestmark = pytest.mark.usefixtures("settings")

# The stack's listeners, on the ports the settings name (CI may move them).
SHARED_ANONYMOUS_PORT = Settings().mqtt_port
SHARED_AUTH_PORT = mqtt_auth_port(Settings())
SHARED_USER, SHARED_PASSWORD = MQTT_TEST_USERNAME, MQTT_TEST_PASSWORD


def recorder(port: int, topic: str, **options) -> MqttRecorder:
    """A subscriber on the loopback broker at ``port``."""
    return MqttRecorder(topic, hostname="127.0.0.1", port=port, **options)


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publishes_json_with_job_id_at_each_qos(
    sender, make_command, make_channel, tenant, qos
):
    channel = make_channel(SHARED_ANONYMOUS_PORT, qos=qos)
    command = make_command()

    async with recorder(SHARED_ANONYMOUS_PORT, f"switchboard/{tenant}/#") as sub:
        outcome = await sender.send(command, channel)
        (message,) = await sub.wait_for(1)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    assert message.topic == f"switchboard/{tenant}/high"
    body = json.loads(message.payload)
    assert body["id"] == command["job_id"]
    assert body["alert"]["summary"] == "Link down on router-7 – Übertragung gestört"
    assert body["alert"]["occurred_at"] == "2026-03-01T12:00:00+00:00"
    assert message.qos == min(qos, 2)


async def test_every_attempt_publishes_the_same_id(
    sender, make_command, make_channel, tenant
):
    channel = make_channel(SHARED_ANONYMOUS_PORT)
    first = make_command()

    async with recorder(SHARED_ANONYMOUS_PORT, f"switchboard/{tenant}/#") as sub:
        await sender.send(first, channel)
        await sender.send(dict(first, attempt=2), channel)
        messages = await sub.wait_for(2)

    ids = {json.loads(m.payload)["id"] for m in messages}
    assert ids == {first["job_id"]}


async def test_topic_values_cannot_add_levels_or_wildcards(
    sender, make_command, make_channel, tenant
):
    channel = make_channel(
        SHARED_ANONYMOUS_PORT,
        topic_template="switchboard/{{ tenant_id }}/{{ site_id }}/{{ device_id }}",
    )

    async with recorder(SHARED_ANONYMOUS_PORT, f"switchboard/{tenant}/#") as sub:
        outcome = await sender.send(
            make_command(site_id="a/b", device_id="x+#y"), channel
        )
        (message,) = await sub.wait_for(1)

    assert outcome.kind is OutcomeKind.DELIVERED
    assert message.topic == f"switchboard/{tenant}/a_b/x__y"


async def test_authenticated_broker(sender, make_command, make_channel, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    channel = make_channel(
        SHARED_AUTH_PORT, password=SHARED_PASSWORD, username=SHARED_USER, qos=2
    )
    auth = {"username": SHARED_USER, "password": SHARED_PASSWORD}

    async with recorder(SHARED_AUTH_PORT, f"switchboard/{tenant}/#", **auth) as sub:
        outcome = await sender.send(make_command(), channel)
        await sub.wait_for(1)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    assert SHARED_PASSWORD not in caplog.text


async def test_wrong_password_is_permanent_and_not_echoed(
    sender, make_command, make_channel, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-password-4711"
    channel = make_channel(SHARED_AUTH_PORT, password=wrong, username=SHARED_USER)

    outcome = await sender.send(make_command(), channel)

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )
    assert wrong not in outcome.error
    assert wrong not in caplog.text


async def test_missing_credentials_on_an_authenticating_broker(
    sender, make_command, make_channel
):
    outcome = await sender.send(make_command(), make_channel(SHARED_AUTH_PORT))

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )


async def test_broker_stopped_and_restarted_between_attempts(
    own_broker, sender, make_command, make_channel
):
    channel = make_channel(own_broker.port, qos=1)
    command = make_command()

    before = await sender.send(command, channel)
    own_broker.stop()
    while_down = await sender.send(dict(command, attempt=2), channel)
    own_broker.start()
    async with recorder(own_broker.port, "switchboard/#") as sub:
        after = await sender.send(dict(command, attempt=3), channel)
        (message,) = await sub.wait_for(1)

    assert before.kind is OutcomeKind.DELIVERED
    assert (while_down.kind, while_down.reason) == (
        OutcomeKind.RETRYABLE,
        Reason.BROKER_UNAVAILABLE,
    )
    assert after.kind is OutcomeKind.DELIVERED, after
    assert json.loads(message.payload)["attempt"] == 3


async def test_kept_connection_is_reopened_after_a_broker_restart(
    own_broker, sender, make_command, make_channel
):
    channel = make_channel(own_broker.port, qos=2)
    await sender.send(make_command(), channel)

    own_broker.restart()
    async with recorder(own_broker.port, "switchboard/#") as sub:
        outcome = await sender.send(make_command(), channel)
        await sub.wait_for(1)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome


async def test_nothing_listening_is_retryable(sender, make_command, make_channel):
    outcome = await sender.send(make_command(), make_channel(free_tcp_port()))

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.RETRYABLE,
        Reason.BROKER_UNAVAILABLE,
    )


async def test_silent_broker_is_retryable(sender, make_command, make_channel):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        channel = make_channel(listener.getsockname()[1], timeout_s=0.5)
        outcome = await sender.send(make_command(), channel)

    assert outcome.kind is OutcomeKind.RETRYABLE


async def test_retained_message(own_broker, sender, make_command, make_channel):
    channel = make_channel(own_broker.port, retain=True)

    await sender.send(make_command(), channel)
    async with recorder(own_broker.port, "switchboard/#") as late_subscriber:
        (message,) = await late_subscriber.wait_for(1)

    assert message.retain is True


async def test_tls_with_trusted_ca(
    tmp_path, certificate, sender, make_command, make_channel
):
    broker = MosquittoBroker(tmp_path / "tls", certificate=certificate).start()
    try:
        trusted = await sender.send(
            make_command(),
            make_channel(broker.port, tls=True, ca_certificate_pem=certificate.ca_pem),
        )
        untrusted = await sender.send(
            make_command(), make_channel(broker.port, tls=True)
        )
    finally:
        broker.stop()

    assert trusted.kind is OutcomeKind.DELIVERED, trusted
    assert (untrusted.kind, untrusted.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )


async def test_publish_without_puback_is_not_delivered(
    sender, make_command, make_channel
):
    async with UnacknowledgingBroker("ignore") as broker:
        channel = make_channel(broker.port, qos=1, timeout_s=1)
        outcome = await sender.send(make_command(), channel)

    assert broker.publishes == 1
    assert outcome.kind is OutcomeKind.RETRYABLE
    assert outcome.reason in (Reason.TIMEOUT, Reason.NOT_ACKNOWLEDGED)


@pytest.mark.parametrize("qos", [1, 2])
async def test_connection_dropped_before_the_ack_is_retryable(
    sender, make_command, make_channel, qos
):
    async with UnacknowledgingBroker("close") as broker:
        channel = make_channel(broker.port, qos=qos)
        outcome = await sender.send(make_command(), channel)

    assert broker.publishes == 1
    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.RETRYABLE,
        Reason.BROKER_UNAVAILABLE,
    )


async def test_qos0_counts_once_written(sender, make_command, make_channel):
    async with UnacknowledgingBroker("ignore") as broker:
        outcome = await sender.send(make_command(), make_channel(broker.port, qos=0))

    assert outcome.kind is OutcomeKind.DELIVERED


@pytest.mark.parametrize("host", private_hosts())
async def test_a_private_host_is_refused_at_send_unless_allowed(
    sender, make_command, make_channel, tenant, host
):
    strict = Sender(Settings(allow_private_targets=False))
    refused, allowed = make_command(), make_command()

    async with recorder(SHARED_ANONYMOUS_PORT, f"switchboard/{tenant}/#") as sub:
        try:
            outcome = await strict.send(
                refused, make_channel(SHARED_ANONYMOUS_PORT, host=host)
            )
        finally:
            await strict.close()
        await sender.send(allowed, make_channel(SHARED_ANONYMOUS_PORT))
        messages = await sub.wait_for(1)

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )
    assert "private targets are not allowed" in outcome.error
    assert [json.loads(m.payload)["id"] for m in messages] == [allowed["job_id"]]
