"""`switchboard emit`: JSON lines in, AlertEvents on the topic, bad lines by number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer

from switchboard.codec import Codec
from switchboard.settings import Settings

SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")


def read_all(settings: Settings, topic: str, expected: int) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{topic}.reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    messages: list = []
    for _ in range(100):
        if len(messages) >= expected:
            break
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            messages.append(message)
    consumer.close()
    return messages


def test_emit_publishes_good_lines_and_reports_bad_ones_by_number(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    topic = make_topic("emit", partitions=3)
    good = {
        "tenant_id": "tenant-e",
        "alert_id": "alert-1",
        "kind": "open",
        "severity": "critical",
        "alert_type": "link_down",
        "site_id": "site-1",
        "summary": "Uplink down — ünïcode ⚠️",
        "labels": {"team": "noc"},
        "occurred_at": "2026-12-03T10:00:00Z",
    }
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "severity": "URGENT"}),
        "",
        json.dumps({**good, "alert_id": "alert-2", "kind": "CLOSED"}),
        json.dumps([1, 2]),
    ]

    result = subprocess.run(
        [SWITCHBOARD, "emit", "-", "--topic", topic],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, "SWITCHBOARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap},
        timeout=60,
    )
    messages = read_all(settings, topic, expected=2)
    alerts = sorted(
        (codec.decode("AlertEvent", m.value()) for m in messages),
        key=lambda a: a["alert_id"],
    )

    assert result.returncode == 1
    assert "2 events published, 3 lines rejected" in result.stdout
    assert "line 2: not JSON" in result.stderr
    assert "line 3: severity:" in result.stderr
    assert "line 6: a line must be a JSON object" in result.stderr
    assert [m.key() for m in sorted(messages, key=lambda m: m.key())] == [
        b"tenant-e/alert-1",
        b"tenant-e/alert-2",
    ]
    assert [(a["kind"], a["severity"]) for a in alerts] == [
        ("OPEN", "CRITICAL"),
        ("CLOSED", "CRITICAL"),
    ]
    assert alerts[0]["summary"] == good["summary"]
    assert alerts[0]["labels"] == {"team": "noc"}
    assert len({a["event_id"] for a in alerts}) == 2
