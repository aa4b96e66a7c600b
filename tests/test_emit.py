"""`switchboard emit`: JSON lines in, AlertEvents on the topic, bad lines by number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
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


def _emit_bytes(settings: Settings, topic: str, data: bytes, source: str = "-"):
    return subprocess.run(
        [SWITCHBOARD, "emit", source, "--topic", topic],
        input=data if source == "-" else None,
        capture_output=True,
        env={**os.environ, "SWITCHBOARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap},
        timeout=60,
    )


@pytest.mark.parametrize("from_file", [False, True], ids=["stdin", "file"])
def test_emit_reports_undecodable_and_control_character_lines_and_goes_on(
    settings: Settings,
    codec: Codec,
    make_topic: Callable,
    tmp_path: Path,
    from_file: bool,
) -> None:
    topic = make_topic("emit-bytes", partitions=1)
    good = {
        "tenant_id": "tenant-b",
        "alert_id": "alert-1",
        "kind": "open",
        "severity": "low",
        "alert_type": "link_down",
        "summary": "Uplink down ⚠️",
    }
    lines = [
        json.dumps(good, ensure_ascii=False).encode(),
        b'{"summary": "caf\xff"}',
        json.dumps({**good, "summary": "s\u0000nul"}).encode(),
        json.dumps({**good, "alert_id": "alert-2"}, ensure_ascii=False).encode(),
    ]
    data = b"\n".join(lines) + b"\n"
    source = "-"
    if from_file:
        source = str(tmp_path / "alerts.jsonl")
        Path(source).write_bytes(data)

    result = _emit_bytes(settings, topic, data, source)
    messages = read_all(settings, topic, expected=2)
    alerts = [codec.decode("AlertEvent", m.value()) for m in messages]
    stderr = result.stderr.decode()

    assert result.returncode == 1
    assert "Traceback" not in stderr
    assert "line 2: not UTF-8: byte 0xff at column 17" in stderr
    assert "line 3: summary: " in stderr and "U+0000" in stderr
    assert "2 events published, 2 lines rejected" in result.stdout.decode()
    assert sorted(a["alert_id"] for a in alerts) == ["alert-1", "alert-2"]
    assert {a["summary"] for a in alerts} == {"Uplink down ⚠️"}
