"""Every exception the MQTT sender can meet, its retry decision; config checks."""

from __future__ import annotations

import ssl

import aiomqtt
import paho.mqtt.client as paho
import pytest
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from services.deliverer.channels.mqtt import classify
from services.deliverer.channels.mqtt.config import Config
from services.deliverer.channels.mqtt.message import build_publication
from services.deliverer.channels.mqtt.sender import ConnectionLost
from services.deliverer.outcome import OutcomeKind, Reason

RETRYABLE, PERMANENT = OutcomeKind.RETRYABLE, OutcomeKind.PERMANENT


def connack(code: int) -> MqttConnectError:
    """A refused connection as aiomqtt reports it (paho gives MQTT 5 codes)."""
    return MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=code))


def certificate_error() -> aiomqtt.MqttError:
    error = aiomqtt.MqttError("[SSL: CERTIFICATE_VERIFY_FAILED]")
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    error.__cause__ = cause
    return error


EXCEPTION_TABLE = [
    (connack(0x86), PERMANENT, Reason.INVALID_CONFIG),  # bad user name or password
    (connack(0x87), PERMANENT, Reason.INVALID_CONFIG),  # not authorized
    (connack(0x84), PERMANENT, Reason.INVALID_CONFIG),  # unsupported protocol
    (connack(0x85), PERMANENT, Reason.INVALID_CONFIG),  # client id not valid
    (connack(0x8A), PERMANENT, Reason.INVALID_CONFIG),  # banned
    (connack(0x88), RETRYABLE, Reason.BROKER_UNAVAILABLE),  # server unavailable
    (connack(0x89), RETRYABLE, Reason.BROKER_UNAVAILABLE),  # server busy
    (MqttConnectError(4), PERMANENT, Reason.INVALID_CONFIG),  # 3.1.1 bad credentials
    (MqttConnectError(3), RETRYABLE, Reason.BROKER_UNAVAILABLE),  # 3.1.1 unavailable
    (
        aiomqtt.MqttCodeError(paho.MQTT_ERR_NO_CONN, "Could not publish"),
        RETRYABLE,
        Reason.BROKER_UNAVAILABLE,
    ),
    (ConnectionLost("closed"), RETRYABLE, Reason.BROKER_UNAVAILABLE),
    (
        aiomqtt.MqttError("[Errno 111] Connection refused"),
        RETRYABLE,
        Reason.BROKER_UNAVAILABLE,
    ),
    (aiomqtt.MqttError("Operation timed out"), RETRYABLE, Reason.NOT_ACKNOWLEDGED),
    (TimeoutError(), RETRYABLE, Reason.TIMEOUT),
    (ConnectionResetError("reset"), RETRYABLE, Reason.BROKER_UNAVAILABLE),
    (OSError("unreachable"), RETRYABLE, Reason.BROKER_UNAVAILABLE),
    (certificate_error(), PERMANENT, Reason.INVALID_CONFIG),
]


@pytest.mark.parametrize(("error", "kind", "reason"), EXCEPTION_TABLE)
def test_every_library_exception_is_mapped(error, kind, reason):
    outcome = classify.outcome_for(error)

    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert outcome.error


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"topic_template": "alerts/#"}, "wildcards"),
        ({"topic_template": "alerts/+/x"}, "wildcards"),
        ({"topic_template": "$SYS/alerts"}, "reserved"),
        ({"topic_template": "{{ nope }}"}, "nope"),
        ({"topic_template": "{% if %}"}, "template"),
        ({"topic_template": "   "}, "empty"),
        ({"qos": 3}, "qos"),
        ({"ca_certificate_pem": "junk", "tls": True}, "PEM"),
    ],
)
def test_bad_configuration_is_refused_when_saved(fields, problem):
    with pytest.raises(ValidationError) as raised:
        Config.model_validate({"host": "broker.example.com", **fields})

    assert problem in str(raised.value)


async def test_template_failing_at_send_is_permanent(
    sender, make_command, make_channel
):
    # Valid for the sample alert (it has details), fails on one without.
    channel = make_channel(1883, topic_template="alerts/{{ details.upper() }}")

    outcome = await sender.send(make_command(details=None), channel)

    assert (outcome.kind, outcome.reason) == (PERMANENT, Reason.TEMPLATE_ERROR)


async def test_topic_rendering_empty_at_send_is_permanent(
    sender, make_command, make_channel
):
    channel = make_channel(1883, topic_template="{{ site_id or '' }}")

    outcome = await sender.send(make_command(site_id=None), channel)

    assert (outcome.kind, outcome.reason) == (PERMANENT, Reason.INVALID_CONFIG)


def test_topic_with_a_label_the_alert_lacks_renders_it_empty(make_command):
    # Labels differ between alerts; a missing one is empty text, as in e-mail,
    # both when the channel is saved and when an alert without it is sent.
    config = Config.model_validate(
        {"host": "broker.example.com", "topic_template": "alerts/{{ labels.rack }}"}
    )

    publication = build_publication(make_command(labels={}), config.topic_template)

    assert publication.topic == "alerts/"
