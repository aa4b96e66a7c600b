"""Publishing alert events from JSON lines, for upstream systems and scripts."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Producer
from pydantic import ValidationError

from switchboard.alerts import AlertEventIn
from switchboard.codec import Codec

log = logging.getLogger(__name__)


@dataclass
class EmitReport:
    """How many lines were published and which were rejected, by line number."""

    published: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def describe_validation_error(error: ValidationError) -> str:
    """``field: problem`` for each problem of a validation error."""
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or '(line)'}: {item['msg']}"
        for item in error.errors()
    )


def parse_line(line: str) -> AlertEventIn:
    """Parse one JSON line into an alert event; raises ValueError with the reason."""
    try:
        document = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(document, dict):
        raise ValueError("a line must be a JSON object")
    try:
        return AlertEventIn.model_validate(document)
    except ValidationError as error:
        raise ValueError(describe_validation_error(error)) from None


def decode_line(raw: bytes | str) -> str:
    """One input line as text; raises ValueError naming the first bad byte."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = raw[error.start : error.start + 1].hex()
        raise ValueError(
            f"not UTF-8: byte 0x{bad} at column {error.start + 1}"
        ) from None


def emit_lines(
    lines: Iterable[bytes | str], producer: Producer, codec: Codec, topic: str
) -> EmitReport:
    """Validate and publish each non-blank line; bad lines are reported, not fatal.

    Lines may be bytes (a file or standard input read as binary), so one line
    that is not UTF-8 is rejected by number instead of ending the whole run.
    """
    report = EmitReport()

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is None:
            report.published += 1
        else:
            report.failed.append(error.str())

    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            event = parse_line(decode_line(raw))
        except ValueError as error:
            report.rejected.append((number, str(error)))
            continue
        producer.produce(
            topic,
            key=event.key,
            value=codec.encode("AlertEvent", event.to_avro()),
            on_delivery=delivered,
        )
        producer.poll(0)
    remaining = producer.flush(30)
    if remaining:
        report.failed.append(f"{remaining} events not acknowledged within 30s")
    return report
