"""A real deliverer process sends e-mail from notify.delivery.email."""

from __future__ import annotations

import email
import email.policy
import uuid

from services.deliverer.channels.email.message import message_id_for
from services.receivers.smtp import SmtpReceiver
from switchboard.jobs import new_command
from switchboard.kafka import header_value
from switchboard.topics import JOBS_TOPIC, dlq_topic
from tests.deliverer.channels.deliverer_process import (
    produce_command,
    publish_channel,
    reached,
    states,
)
from tests.deliverer.helpers import JobEvents, TopicReader, make_alert


def email_channel(settings, codec, tenant: str, port: int) -> str:
    config = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "alerts@example.com",
        "to": ["noc@example.net"],
        "timeout_s": 5,
    }
    return publish_channel(settings, codec, tenant, "email", config, {})


def test_delivered_and_dead_jobs(settings, codec, deliverer, unique):
    tenant = f"tenant-mail-{unique}"
    accepting = SmtpReceiver().start()
    refusing = SmtpReceiver().start()
    refusing.handler.behaviour.data_reply = "554 5.7.1 Rejected by policy"
    events = JobEvents(settings, codec, JOBS_TOPIC, from_end=True)
    dead_letters = TopicReader(settings, dlq_topic("email"), from_end=True)
    try:
        good = new_command(
            make_alert(tenant, summary="Ünïcode über alles"),
            email_channel(settings, codec, tenant, accepting.port),
            "email",
            str(uuid.uuid4()),
        )
        bad = new_command(
            make_alert(tenant),
            email_channel(settings, codec, tenant, refusing.port),
            "email",
            str(uuid.uuid4()),
        )
        produce_command(settings, codec, good)
        produce_command(settings, codec, bad)
        recorded = events.wait(
            lambda e: (
                reached(good["job_id"], "delivered")(e)
                and reached(bad["job_id"], "dead")(e)
            ),
            timeout_s=90,
        )
        (dead_letter,) = [
            m
            for m in dead_letters.wait_until(lambda ms: _dead(ms, bad), timeout_s=30)
            if _is_command(codec, m, bad)
        ]
    finally:
        events.close()
        dead_letters.close()
        accepting.stop()
        refusing.stop()

    assert states(recorded, good["job_id"]) == [("delivered", 1, "delivered")]
    assert states(recorded, bad["job_id"]) == [("dead", 1, "smtp_5xx")]
    (received,) = accepting.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert message["Message-ID"] == message_id_for(good["job_id"], "alerts@example.com")
    assert "Ünïcode über alles" in str(message["Subject"])
    assert header_value(dead_letter, "switchboard.reason") == "smtp_5xx"
    assert deliverer.process.poll() is None, deliverer.log_text()[-3000:]


def _is_command(codec, message, command) -> bool:
    if message.key() != command["channel_id"].encode():
        return False
    return (
        codec.decode("DeliveryCommand", message.value())["job_id"] == command["job_id"]
    )


def _dead(messages, command) -> bool:
    return any(m.key() == command["channel_id"].encode() for m in messages)
