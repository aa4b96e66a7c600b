"""Sends per second of the e-mail, SNMP and MQTT senders against local peers.

Each sender delivers the same number of commands to a peer on loopback, with
a fixed number in flight (as the deliverer's per-channel limit would allow):

- email: aiosmtpd recording every message, plain SMTP, pooled connections;
- snmp: v2c traps to net-snmp's snmptrapd logging to a file;
- mqtt: QoS 1 publishes to a private mosquitto, each waiting for its PUBACK.

Run: ``.venv/bin/python bench/email_snmp_mqtt.py [--messages 500] [--in-flight 8]``.
Needs snmptrapd and mosquitto installed; starts and stops its own peers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.deliverer.channels.base import ResolvedChannel  # noqa: E402
from services.deliverer.channels.email.config import Config as EmailConfig  # noqa: E402
from services.deliverer.channels.email.sender import Sender as EmailSender  # noqa: E402
from services.deliverer.channels.mqtt.config import Config as MqttConfig  # noqa: E402
from services.deliverer.channels.mqtt.sender import Sender as MqttSender  # noqa: E402
from services.deliverer.channels.snmp.config import Config as SnmpConfig  # noqa: E402
from services.deliverer.channels.snmp.config import Secrets as SnmpSecrets  # noqa: E402
from services.deliverer.channels.snmp.sender import Sender as SnmpSender  # noqa: E402
from services.deliverer.outcome import OutcomeKind  # noqa: E402
from services.receivers.mqtt import MosquittoBroker  # noqa: E402
from services.receivers.smtp import SmtpReceiver  # noqa: E402
from services.receivers.snmp import TrapReceiver  # noqa: E402
from switchboard.jobs import new_command  # noqa: E402
from switchboard.settings import Settings  # noqa: E402


def command(channel_type: str) -> dict[str, Any]:
    """A first-attempt command for a fresh alert."""
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "bench",
        "alert_id": "alert-1",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": "site-1",
        "device_id": "router-7",
        "summary": "Link down on router-7 – Übertragung gestört",
        "details": "ge-0/0/1 lost carrier",
        "labels": {"region": "eu-west"},
        "occurred_at": datetime.now(UTC),
        "source": "bench",
    }
    return new_command(alert, f"bench-{channel_type}", channel_type, "rule-1")


def channel(channel_type: str, config: Any, secrets: Any = None) -> ResolvedChannel:
    """A resolved channel as the deliverer would pass it."""
    return ResolvedChannel(
        f"bench-{channel_type}", "bench", "bench", channel_type, True, config, secrets
    )


async def measure(sender: Any, target: ResolvedChannel, messages: int, in_flight: int):
    """Deliver ``messages`` commands, ``in_flight`` at a time; (rate, failures)."""
    slots = asyncio.Semaphore(in_flight)
    commands = [command(target.channel_type) for _ in range(messages)]

    async def one(item: dict[str, Any]) -> bool:
        async with slots:
            outcome = await sender.send(item, target)
            return outcome.kind is OutcomeKind.DELIVERED

    started = time.perf_counter()
    results = await asyncio.gather(*(one(item) for item in commands))
    elapsed = time.perf_counter() - started
    await sender.close()
    return messages / elapsed, results.count(False)


def _runs(settings: Settings, smtp_port: int, trap_port: int, mqtt_port: int):
    email = EmailConfig(
        host="127.0.0.1",
        port=smtp_port,
        security="none",
        from_address="a@example.com",
        to=["b@example.com"],
    )
    snmp = SnmpConfig(host="127.0.0.1", port=trap_port)
    mqtt = MqttConfig(host="127.0.0.1", port=mqtt_port, qos=1)
    return {
        "email": (EmailSender(settings), channel("email", email)),
        "snmp": (
            SnmpSender(settings),
            channel("snmp", snmp, SnmpSecrets(community="public")),
        ),
        "mqtt": (MqttSender(settings), channel("mqtt", mqtt)),
    }


async def main(messages: int, in_flight: int) -> None:
    """Run the three measurements and print one line each."""
    # The peers listen on loopback, which channels may not target by default.
    settings = Settings(allow_private_targets=True)
    with tempfile.TemporaryDirectory() as scratch:
        smtp = SmtpReceiver().start()
        traps = TrapReceiver(Path(scratch) / "snmptrapd").start()
        broker = MosquittoBroker(Path(scratch) / "mosquitto").start()
        try:
            runs = _runs(settings, smtp.port, traps.port, broker.port)
            for name, (sender, target) in runs.items():
                rate, failed = await measure(sender, target, messages, in_flight)
                print(
                    f"{name:<6} {rate:8.0f} sends/s  ({messages} sent, {failed} failed)"
                )
        finally:
            smtp.stop()
            traps.stop()
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=8)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.in_flight))
