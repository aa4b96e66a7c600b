"""Publishing alert events from JSON lines, for upstream systems and scripts.

Every line is judged on its own: a line that is not valid, too long, or too large
for Kafka is reported by its number and the next line is read, so one bad line
never costs the others. Lines are read with a bounded buffer, so a huge line
without a newline is skipped without being held in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from confluent_kafka import KafkaError, KafkaException, Producer
from pydantic import ValidationError

from switchboard.alerts import AlertEventIn
from switchboard.codec import Codec, CodecError

log = logging.getLogger(__name__)

# Longest line read, newline excluded. An event Kafka takes is at most about
# 1 MB once encoded; JSON escapes can make its line a few times longer.
MAX_LINE_BYTES = 4 * 1024 * 1024
# Read a too-long line's remainder in pieces of this size, to skip it.
SKIP_CHUNK_BYTES = 64 * 1024

# The producer's message.max.bytes (librdkafka's default, set explicitly so the
# two agree) and what a record adds to key and value on the wire: librdkafka
# refuses a message whose key, value and record overhead exceed the limit.
MAX_MESSAGE_BYTES = 1_000_000
RECORD_OVERHEAD_BYTES = 256
MAX_EVENT_BYTES = MAX_MESSAGE_BYTES - RECORD_OVERHEAD_BYTES

# Times the codec writes as timestamp-millis and every reader decodes into a
# Python datetime (years 1-9999 in UTC); before 1970 is no alert's time either.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_OCCURRED_AT = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

# While librdkafka's local queue is full, wait this long for acknowledgements.
QUEUE_FULL_POLL_S = 0.5
FLUSH_TIMEOUT_S = 30.0
# Line numbers named in the summary of unacknowledged events.
MAX_LINES_NAMED = 10


@dataclass
class EmitReport:
    """How many lines were published and which were rejected, by line number."""

    published: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LineTooLong:
    """Stands for a line longer than the limit, which was skipped unread."""

    limit_bytes: int


def read_lines(
    stream: BinaryIO, max_bytes: int = MAX_LINE_BYTES
) -> Iterator[bytes | LineTooLong]:
    """Each line of ``stream`` (newline stripped), or :class:`LineTooLong`.

    Never holds more than ``max_bytes`` of one line: the rest of a longer line
    is read in small pieces and dropped.
    """
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1]
        elif len(line) <= max_bytes:
            yield line  # the last line, without a newline
        else:
            _skip_rest_of_line(stream)
            yield LineTooLong(max_bytes)


def _skip_rest_of_line(stream: BinaryIO) -> None:
    while True:
        piece = stream.readline(SKIP_CHUNK_BYTES)
        if not piece or piece.endswith(b"\n"):
            return


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
    except RecursionError:
        raise ValueError("not JSON this tool reads: nested too deeply") from None
    if not isinstance(document, dict):
        raise ValueError("a line must be a JSON object")
    try:
        event = AlertEventIn.model_validate(document)
    except ValidationError as error:
        raise ValueError(describe_validation_error(error)) from None
    check_occurred_at(event.occurred_at)
    return event


def check_occurred_at(moment: datetime) -> None:
    """Raise ValueError unless every reader can decode ``moment`` once encoded."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None  # before year 1 or after 9999 once moved to UTC
    if utc is None or not EARLIEST_OCCURRED_AT <= utc <= LATEST_OCCURRED_AT:
        raise ValueError(
            f"occurred_at: {moment.isoformat()} is out of range; give a time from "
            "1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"
        )


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


def encode_event(
    event: AlertEventIn, codec: Codec, max_bytes: int = MAX_EVENT_BYTES
) -> tuple[bytes, bytes]:
    """The event's key and Avro value; ValueError if Kafka would refuse them."""
    key = event.key.encode("utf-8")
    try:
        value = codec.encode("AlertEvent", event.to_avro())
    except CodecError as error:
        raise ValueError(f"does not fit the AlertEvent schema: {error}") from None
    size = len(key) + len(value)
    if size > max_bytes:
        raise ValueError(
            f"the event is {size:,} bytes encoded; Kafka takes at most "
            f"{max_bytes:,} (shorten details, summary or labels)"
        )
    return key, value


class _Publisher:
    """Produces events, keeping count of acknowledgements by line number."""

    def __init__(self, producer: Producer, topic: str, report: EmitReport) -> None:
        """Publish to ``topic`` with ``producer``, recording outcomes in ``report``."""
        self._producer = producer
        self._topic = topic
        self._report = report
        self.pending: set[int] = set()

    def publish(self, number: int, key: bytes, value: bytes) -> None:
        """Produce one event; raises ValueError if the producer refuses it."""
        while True:
            try:
                self._producer.produce(
                    self._topic,
                    key=key,
                    value=value,
                    on_delivery=lambda error, _m: self._delivered(number, error),
                )
                break
            except BufferError:
                # The local queue is full: serve acknowledgements, then retry.
                self._producer.poll(QUEUE_FULL_POLL_S)
            except KafkaException as error:
                raise ValueError(
                    f"Kafka's producer refused it: {_reason(error)}"
                ) from None
        self.pending.add(number)
        self._producer.poll(0)

    def _delivered(self, number: int, error: KafkaError | None) -> None:
        self.pending.discard(number)
        if error is None:
            self._report.published += 1
        else:
            self._report.rejected.append((number, f"not published: {error.str()}"))


def _reason(error: KafkaException) -> str:
    detail = error.args[0] if error.args else error
    return detail.str() if isinstance(detail, KafkaError) else str(detail)


def emit_lines(
    lines: Iterable[bytes | str | LineTooLong],
    producer: Producer,
    codec: Codec,
    topic: str,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> EmitReport:
    """Validate and publish each non-blank line; bad lines are reported, not fatal.

    Lines may be bytes (a file or standard input read as binary), so one line
    that is not UTF-8 is rejected by number instead of ending the whole run.
    """
    report = EmitReport()
    publisher = _Publisher(producer, topic, report)
    try:
        for number, raw in enumerate(lines, start=1):
            if isinstance(raw, LineTooLong):
                report.rejected.append(
                    (number, f"longer than {raw.limit_bytes:,} bytes; skipped unread")
                )
                continue
            if not raw.strip():
                continue
            try:
                event = parse_line(decode_line(raw))
                key, value = encode_event(event, codec, max_event_bytes)
                publisher.publish(number, key, value)
            except ValueError as error:
                report.rejected.append((number, str(error)))
            except RecursionError:
                report.rejected.append((number, "nested too deeply to encode"))
    finally:
        # Whatever ends the run, the events already handed to the producer go out.
        producer.flush(FLUSH_TIMEOUT_S)
    if publisher.pending:
        report.failed.append(_unacknowledged(sorted(publisher.pending)))
    report.rejected.sort()
    return report


def _unacknowledged(numbers: list[int]) -> str:
    named = ", ".join(str(n) for n in numbers[:MAX_LINES_NAMED])
    if len(numbers) > MAX_LINES_NAMED:
        named += f" and {len(numbers) - MAX_LINES_NAMED} more"
    lines = "line" if len(numbers) == 1 else "lines"
    return (
        f"{len(numbers)} event(s) not acknowledged by Kafka within "
        f"{FLUSH_TIMEOUT_S:.0f} s ({lines} {named})"
    )
