"""`switchboard emit`: JSON lines in, AlertEvents on the topic, bad lines by number."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from switchboard.codec import Codec
from switchboard.emit import (
    MAX_EVENT_BYTES,
    MAX_LINE_BYTES,
    SKIP_CHUNK_BYTES,
    LineTooLong,
    emit_lines,
    read_lines,
)
from switchboard.kafka import make_producer
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
        b"[" * 3000 + b"]" * 3000,
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
    assert "line 4: not JSON this tool reads: nested too deeply" in stderr
    assert "2 events published, 3 lines rejected" in result.stdout.decode()
    assert sorted(a["alert_id"] for a in alerts) == ["alert-1", "alert-2"]
    assert {a["summary"] for a in alerts} == {"Uplink down ⚠️"}


def _alert_line(alert_id: str, **fields: object) -> str:
    good = {
        "tenant_id": "tenant-l",
        "alert_id": alert_id,
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "summary": "Uplink down",
        "occurred_at": "2026-12-03T10:00:00Z",
    }
    return json.dumps({**good, **fields})


def test_emit_rejects_oversized_too_long_and_out_of_range_lines_and_goes_on(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    topic = make_topic("emit-limits", partitions=1)
    # Over Kafka's message limit once encoded, but well under the line limit.
    labels = {f"label-{i}": "x" * 1000 for i in range(1100)}
    too_long = b'{"summary": "' + b"y" * (MAX_LINE_BYTES + 1) + b'"}'
    lines = [
        _alert_line("alert-1").encode(),
        _alert_line("alert-big", labels=labels).encode(),
        too_long,
        _alert_line("alert-year-0", occurred_at="0001-01-01T00:00:00+14:00").encode(),
        _alert_line("alert-y10k", occurred_at="9999-12-31T23:00:00-05:00").encode(),
        _alert_line("alert-2", occurred_at="1970-01-01T00:00:00Z").encode(),
    ]

    result = _emit_bytes(settings, topic, b"\n".join(lines) + b"\n")
    messages = read_all(settings, topic, expected=2)
    stderr = result.stderr.decode()

    assert result.returncode == 1
    assert "Traceback" not in stderr
    assert "2 events published, 4 lines rejected" in result.stdout.decode()
    assert "line 2: the event is " in stderr
    assert f"Kafka takes at most {MAX_EVENT_BYTES:,}" in stderr
    assert f"line 3: longer than {MAX_LINE_BYTES:,} bytes" in stderr
    assert "line 4: occurred_at: 0001-01-01T00:00:00+14:00 is out of range" in stderr
    assert "line 5: occurred_at: 9999-12-31T23:00:00-05:00 is out of range" in stderr
    # What was published, the router can read back.
    alerts = sorted(
        (codec.decode("AlertEvent", m.value()) for m in messages),
        key=lambda a: a["alert_id"],
    )
    assert [a["alert_id"] for a in alerts] == ["alert-1", "alert-2"]
    assert alerts[1]["occurred_at"].year == 1970


class _RecordingStream(io.BytesIO):
    """A byte stream that remembers the most bytes one readline returned."""

    largest_read = 0

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        line = super().readline(size)
        self.largest_read = max(self.largest_read, len(line))
        return line


def test_read_lines_skips_a_long_line_without_holding_it() -> None:
    limit = 1000
    stream = _RecordingStream(b"first\n" + b"z" * 50_000 + b"\nlast")

    lines = list(read_lines(stream, max_bytes=limit))

    assert lines == [b"first", LineTooLong(limit), b"last"]
    assert stream.largest_read <= max(limit + 1, SKIP_CHUNK_BYTES)


def test_a_full_producer_queue_is_waited_out_not_fatal(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    topic = make_topic("emit-queue", partitions=1)
    # A queue of two messages fills at once: produce() raises BufferError.
    producer = make_producer(settings, **{"queue.buffering.max.messages": 2})
    lines = [_alert_line(f"alert-{i}").encode() for i in range(30)]

    report = emit_lines(lines, producer, codec, topic)

    assert (report.published, report.rejected, report.failed) == (30, [], [])
    assert len(read_all(settings, topic, expected=30)) == 30


def test_a_message_the_producer_refuses_is_rejected_by_number(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    topic = make_topic("emit-refused", partitions=1)
    # A producer stricter than the size check: its own refusal must be caught.
    producer = make_producer(settings, **{"message.max.bytes": 2000})
    lines = [
        _alert_line("alert-big", details="d" * 5000).encode(),
        _alert_line("alert-small").encode(),
    ]

    report = emit_lines(lines, producer, codec, topic)

    assert report.published == 1
    assert [number for number, _reason in report.rejected] == [1]
    assert "Kafka's producer refused it" in report.rejected[0][1]
    assert "too large" in report.rejected[0][1]
