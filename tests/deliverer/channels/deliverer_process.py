"""One real ``switchboard deliverer --type email,snmp,mqtt`` for the end-to-end tests.

The e-mail, SNMP and MQTT end-to-end tests share one subprocess for the whole
session (started by whichever test needs it first, stopped at the end), and
publish their channels to notify.config and their commands to the main
delivery topics, which other engineers' tests share: every test filters what
it reads by its own job ids.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from switchboard.codec import Codec
from switchboard.config_cache import ChannelRecord, channel_key, encode_channel_event
from switchboard.kafka import make_admin, make_producer
from switchboard.secrets import SecretBox
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC, delivery_topic, ensure_topics, topic_specs

TYPES = "email,snmp,mqtt"
RETRY_DELAYS = "1s,2s"
STOP_TIMEOUT_S = 60


class DelivererProcess:
    """The subprocess and the file its output goes to."""

    def __init__(self, log_path: Path) -> None:
        """Start ``switchboard deliverer`` with short retry tiers."""
        settings = Settings(retry_delays=RETRY_DELAYS)
        ensure_topics(make_admin(settings), topic_specs(settings))
        self.log_path = log_path
        environment = {
            **os.environ,
            "SWITCHBOARD_RETRY_DELAYS": RETRY_DELAYS,
            # The tests' SMTP server, trap receiver and broker are on loopback.
            "SWITCHBOARD_ALLOW_PRIVATE_TARGETS": "true",
        }
        switchboard = Path(sys.executable).parent / "switchboard"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(switchboard), "deliverer", "--type", TYPES],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_text(self) -> str:
        """What the deliverer printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


_shared: DelivererProcess | None = None


def shared_deliverer(directory: Path) -> DelivererProcess:
    """The session's deliverer, started on first use, stopped when Python exits."""
    global _shared
    if _shared is None:
        directory.mkdir(parents=True, exist_ok=True)
        _shared = DelivererProcess(directory / f"deliverer-{uuid.uuid4().hex[:6]}.log")
        atexit.register(_shared.stop)
    return _shared


def publish_channel(
    settings: Settings,
    codec: Codec,
    tenant_id: str,
    channel_type: str,
    config: dict[str, Any],
    secrets: dict[str, Any],
) -> str:
    """Publish a channel's ConfigEvent to notify.config; returns its id."""
    channel_id = str(uuid.uuid4())
    record = ChannelRecord(
        id=channel_id,
        tenant_id=tenant_id,
        name=f"{channel_type} end-to-end",
        channel_type=channel_type,
        enabled=True,
        config_json=json.dumps(config),
        secrets_encrypted=SecretBox.from_settings(settings).encrypt(secrets),
    )
    producer = make_producer(settings)
    producer.produce(
        CONFIG_TOPIC, encode_channel_event(codec, record, 0), channel_key(channel_id)
    )
    assert producer.flush(30) == 0
    return channel_id


def produce_command(settings: Settings, codec: Codec, command: dict[str, Any]) -> None:
    """Produce a DeliveryCommand to its type's main delivery topic."""
    producer = make_producer(settings)
    topic = delivery_topic(str(command["channel_type"]))
    producer.produce(
        topic, codec.encode("DeliveryCommand", command), command["channel_id"]
    )
    assert producer.flush(30) == 0


def states(events: list[dict[str, Any]], job_id: str) -> list[tuple[str, int, str]]:
    """(state, attempt, reason) of ``job_id``'s events, in order."""
    return [
        (str(e["state"]), e["attempt"], e["reason"] or "")
        for e in events
        if e["job_id"] == job_id
    ]


def reached(job_id: str, state: str) -> Any:
    """A condition for JobEvents.wait: ``job_id`` has an event in ``state``."""
    return lambda events: any(
        e["job_id"] == job_id and str(e["state"]) == state for e in events
    )
