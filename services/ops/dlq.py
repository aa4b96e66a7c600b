"""Dead-letter topics for operators: read them, and replay what they hold.

A dead letter on ``notify.delivery.<type>.dlq`` is the DeliveryCommand of a
job's failed attempt, with the reason in headers. Replaying one queues the next
attempt of the same job on the main topic, through the same path as the API's
retry (a ``queued`` job event, then the command, both acknowledged), and claims
that attempt of the job like the API's retry does, so the two never both queue it.

Each replay is remembered in ``dlq_replays`` by the dead letter's topic,
partition and offset. The row is claimed in the same PostgreSQL transaction that
waits for Kafka's acknowledgement, so two operators replaying at once cannot
both replay one dead letter, and a failed produce leaves no row behind.

The router's dead-letter topic ``notify.router.dlq`` holds something else: input
the router could not decode or route, as the original bytes under the original
key, with the reason in headers. Those are listed (with whatever of the bytes
still decodes) but not replayed: the same bytes would be refused again, so the
fix is upstream, and the corrected events are published to the alerts topic anew.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import psycopg
from confluent_kafka import KafkaError, Message, Producer, TopicPartition
from psycopg.rows import dict_row

from services.api.errors import ApiError
from services.api.publish import queue_command
from services.api.routes.jobs import claim_retry
from services.deliverer.pipeline import (
    HEADER_ATTEMPT,
    HEADER_ERROR,
    HEADER_FINAL,
    HEADER_REASON,
)
from services.ops.errors import KafkaUnanswered, OpsError
from services.router.app import (
    ERROR_CLASS_HEADER,
    ORIGINAL_BYTES_HEADER,
    REASON_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
)
from switchboard.codec import Codec, CodecError
from switchboard.domain import JobState
from switchboard.kafka import make_consumer
from switchboard.settings import Settings

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0
POLL_TIMEOUT_S = 0.1
CONSUME_BATCH = 500
UNDECODABLE = "undecodable"
# How much of bytes that do not decode to show: enough to recognise them.
PREVIEW_CHARS = 120

# What an operator does with the router's dead letters, since they are not replayed.
ROUTER_REPUBLISH_HINT = (
    "The router's dead letters are not replayed: the same bytes would be refused "
    "again. Fix the producer upstream, then publish the corrected events to the "
    "alerts topic again (key tenant_id/alert_id), e.g. with `switchboard emit`."
)

_Letter = TypeVar("_Letter")


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter topic, with its command when it decodes."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    command: dict[str, Any] | None
    headers: dict[str, str]
    decode_error: str | None = None

    @property
    def job_id(self) -> str | None:
        """The job's id, if the command decoded."""
        return str(self.command["job_id"]) if self.command else None

    @property
    def tenant_id(self) -> str | None:
        """The job's tenant, if the command decoded."""
        return str(self.command["tenant_id"]) if self.command else None

    @property
    def channel_id(self) -> str | None:
        """The job's channel, if the command decoded."""
        return str(self.command["channel_id"]) if self.command else None

    @property
    def attempt(self) -> int | None:
        """The attempt that failed for good."""
        if self.command is not None:
            return int(self.command["attempt"])
        text = self.headers.get(HEADER_ATTEMPT)
        return int(text) if text and text.isdigit() else None

    @property
    def reason(self) -> str:
        """Why it was dead-lettered (the deliverer's reason header)."""
        return self.headers.get(HEADER_REASON) or (
            UNDECODABLE if self.command is None else "unknown"
        )

    @property
    def final(self) -> str:
        """``permanent`` or ``max_attempts``."""
        return self.headers.get(HEADER_FINAL, "")

    @property
    def error(self) -> str:
        """The redacted error text of the last attempt."""
        return self.headers.get(HEADER_ERROR) or self.decode_error or ""

    @property
    def from_router(self) -> bool:
        """Whether the router wrote this (its refused input), not a deliverer."""
        return REASON_HEADER in self.headers and HEADER_REASON not in self.headers


def _headers(message: Message) -> dict[str, str]:
    pairs = message.headers() or []
    return {
        key: value.decode("utf-8", errors="replace")
        for key, value in pairs
        if value is not None
    }


def _timestamp(message: Message) -> datetime | None:
    kind, millis = message.timestamp()
    return datetime.fromtimestamp(millis / 1000, UTC) if kind and millis > 0 else None


def _to_dead_letter(message: Message, codec: Codec) -> DeadLetter:
    timestamp = _timestamp(message)
    command, error = None, None
    try:
        command = codec.decode("DeliveryCommand", message.value() or b"")
    except CodecError as decode_failure:
        error = str(decode_failure)
    return DeadLetter(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp=timestamp,
        command=command,
        headers=_headers(message),
        decode_error=error,
    )


def read_dead_letters(settings: Settings, topic: str, codec: Codec) -> list[DeadLetter]:
    """Every message now on ``topic``, read up to the end it had when we started."""
    return _read_topic(settings, topic, lambda m: _to_dead_letter(m, codec))


def _read_topic(
    settings: Settings, topic: str, convert: Callable[[Message], _Letter]
) -> list[_Letter]:
    """Every message now on ``topic`` converted, read up to its end at the start."""
    consumer = make_consumer(
        settings,
        f"switchboard.ops.reader.{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True},
    )
    try:
        remaining = _assign_all(consumer, topic)
        letters: list[_Letter] = []
        stalled_s = 0.0
        while remaining:
            # consume() waits for a full batch or the timeout, so keep it short.
            batch = consumer.consume(CONSUME_BATCH, timeout=POLL_TIMEOUT_S)
            stalled_s = 0.0 if batch else stalled_s + POLL_TIMEOUT_S
            if stalled_s >= READ_TIMEOUT_S:
                raise KafkaUnanswered(
                    f"reading {topic} stalled for {READ_TIMEOUT_S:.0f} s"
                )
            for message in batch:
                _take(message, remaining, letters, convert)
        return letters
    finally:
        consumer.close()


def _assign_all(consumer: Any, topic: str) -> dict[int, int]:
    metadata = consumer.list_topics(topic, timeout=READ_TIMEOUT_S).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise OpsError(f"topic {topic} does not exist")
    remaining: dict[int, int] = {}
    assignment = []
    for partition in sorted(metadata.partitions):
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=READ_TIMEOUT_S
        )
        if high > low:
            remaining[partition] = high
            assignment.append(TopicPartition(topic, partition, low))
    consumer.assign(assignment)
    return remaining


def _take(
    message: Message,
    remaining: dict[int, int],
    letters: list[_Letter],
    convert: Callable[[Message], _Letter],
) -> None:
    error = message.error()
    partition = message.partition()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            remaining.pop(partition, None)
            return
        raise OpsError(f"reading {message.topic()} failed: {error.str()}")
    if partition not in remaining:
        return
    letters.append(convert(message))
    if message.offset() + 1 >= remaining[partition]:
        remaining.pop(partition)


@dataclass(frozen=True)
class RouterDeadLetter:
    """One message of the router's dead-letter topic: input it could not route."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: str | None
    headers: dict[str, str]
    size: int
    original: str
    alert: dict[str, Any] | None = None

    @property
    def reason(self) -> str:
        """Why the router refused it (its reason header)."""
        return self.headers.get(REASON_HEADER, "unknown")

    @property
    def error_class(self) -> str:
        """The kind of failure, e.g. UnknownSchemaError or AlertTooLarge."""
        return self.headers.get(ERROR_CLASS_HEADER, "")

    @property
    def source(self) -> str:
        """Where the original message was on the input: ``topic[partition]@offset``."""
        topic = self.headers.get(SOURCE_TOPIC_HEADER)
        if topic is None:
            return ""
        partition = self.headers.get(SOURCE_PARTITION_HEADER, "?")
        return f"{topic}[{partition}]@{self.headers.get(SOURCE_OFFSET_HEADER, '?')}"

    @property
    def tenant_id(self) -> str | None:
        """The alert's tenant: decoded, or the part of the key before the slash."""
        if self.alert is not None:
            return str(self.alert["tenant_id"])
        if self.key and "/" in self.key:
            return self.key.split("/", 1)[0]
        return None


def read_router_dead_letters(
    settings: Settings, topic: str, codec: Codec
) -> list[RouterDeadLetter]:
    """Every message now on the router's dead-letter ``topic``."""
    return _read_topic(settings, topic, lambda m: _to_router_dead_letter(m, codec))


def _to_router_dead_letter(message: Message, codec: Codec) -> RouterDeadLetter:
    headers = _headers(message)
    value = message.value()
    key = message.key()
    alert, original = _describe_original(value, headers, codec)
    return RouterDeadLetter(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp=_timestamp(message),
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        headers=headers,
        size=len(value or b""),
        original=original,
        alert=alert,
    )


def _describe_original(
    value: bytes | None, headers: dict[str, str], codec: Codec
) -> tuple[dict[str, Any] | None, str]:
    """The original as an AlertEvent if it decodes, and a line saying what it is."""
    if value is None:
        kept = headers.get(ORIGINAL_BYTES_HEADER)
        if kept:
            return None, f"{kept} bytes, too large to keep; read it at the source"
        return None, "no value (a tombstone)"
    try:
        alert = codec.decode("AlertEvent", value)
    except CodecError:
        pass
    else:
        summary = f"{alert['kind']} {alert['severity']} {alert['alert_type']}"
        return alert, f"AlertEvent {alert['tenant_id']}/{alert['alert_id']}: {summary}"
    try:
        writer = codec.writer_schema(value)
    except CodecError:
        return None, _preview(value)
    record = f"{writer.record} v{writer.version}"
    return None, f"Avro {record}, does not decode as an AlertEvent"


def _preview(value: bytes) -> str:
    """The start of bytes that are not Avro: as text if they are, else as hex."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        shown = value[: PREVIEW_CHARS // 2].hex()
        more = "…" if len(value) > PREVIEW_CHARS // 2 else ""
        return f"{len(value)} bytes, not Avro: 0x{shown}{more}"
    kind = "JSON" if _is_json(text) else "text"
    # Unprintable characters as escapes, so the preview stays on one line.
    shown = "".join(
        c if c.isprintable() else repr(c)[1:-1] for c in text[:PREVIEW_CHARS]
    )
    more = "…" if len(text) > PREVIEW_CHARS else ""
    return f"{len(value)} bytes, {kind}, not Avro: {shown}{more}"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class RouterSelection:
    """Which router dead letters to list; empty fields match anything."""

    tenant_id: str | None = None
    since: datetime | None = None
    error_class: str | None = None

    def matches(self, letter: RouterDeadLetter) -> bool:
        """Whether ``letter`` is selected."""
        if self.tenant_id and letter.tenant_id != self.tenant_id:
            return False
        if self.since and (letter.timestamp is None or letter.timestamp < self.since):
            return False
        if self.error_class and letter.error_class != self.error_class:
            return False
        return True


# Either kind of dead letter: both have a topic position and a broker time.
_Placed = TypeVar("_Placed", DeadLetter, RouterDeadLetter)


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operation applies to; empty fields match anything."""

    job_id: str | None = None
    channel_id: str | None = None
    tenant_id: str | None = None
    since: datetime | None = None
    reason: str | None = None

    @property
    def empty(self) -> bool:
        """Whether nothing narrows the selection."""
        narrowing = (
            self.job_id,
            self.channel_id,
            self.tenant_id,
            self.since,
            self.reason,
        )
        return not any(narrowing)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` is selected."""
        if self.job_id and letter.job_id != self.job_id:
            return False
        if self.channel_id and letter.channel_id != self.channel_id:
            return False
        if self.tenant_id and letter.tenant_id != self.tenant_id:
            return False
        if self.since and (letter.timestamp is None or letter.timestamp < self.since):
            return False
        if self.reason and letter.reason != self.reason:
            return False
        return True


@dataclass(frozen=True)
class Replay:
    """A remembered replay of one dead letter."""

    attempt: int
    count: int
    replayed_at: datetime


def replays(conn: psycopg.Connection, topic: str) -> dict[tuple[int, int], Replay]:
    """Every remembered replay of ``topic``'s dead letters, by (partition, offset)."""
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            "SELECT kafka_partition, kafka_offset, attempt, replay_count, replayed_at"
            " FROM dlq_replays WHERE topic = %s",
            (topic,),
        ).fetchall()
    return {
        (r["kafka_partition"], r["kafka_offset"]): Replay(
            r["attempt"], r["replay_count"], r["replayed_at"]
        )
        for r in rows
    }


def newest_first(letters: list[_Placed]) -> list[_Placed]:
    """Dead letters ordered newest first (by broker time, then position)."""
    epoch = datetime.fromtimestamp(0, UTC)
    return sorted(
        letters,
        key=lambda d: (d.timestamp or epoch, d.partition, d.offset),
        reverse=True,
    )


def page(letters: list[_Placed], limit: int, number: int) -> list[_Placed]:
    """Page ``number`` (from 1) of ``limit`` dead letters."""
    start = (number - 1) * limit
    return letters[start : start + limit]


class ReplayOutcome(StrEnum):
    """What a replay did, or would do, with one dead letter."""

    REPLAYED = "replayed"
    WOULD_REPLAY = "would replay"
    ALREADY_REPLAYED = "already replayed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class ReplayResult:
    """One dead letter's replay outcome, the attempt it queued and why."""

    letter: DeadLetter
    outcome: ReplayOutcome
    attempt: int | None = None
    detail: str = ""


class _Refused(Exception):
    """Raised inside a replay's transaction to roll its claims back."""

    def __init__(self, result: ReplayResult) -> None:
        """Carry the result the replay reports instead."""
        super().__init__(result.outcome)
        self.result = result


class Replayer:
    """Replays dead letters as the next attempts of their jobs."""

    def __init__(
        self, conn: psycopg.Connection, producer: Producer, codec: Codec
    ) -> None:
        """Use ``conn`` (autocommit) for the replay records and job rows."""
        self._conn = conn
        self._producer = producer
        self._codec = codec

    def run(
        self, letters: list[DeadLetter], again: bool = False, dry_run: bool = False
    ) -> list[ReplayResult]:
        """Replay ``letters`` (of one topic) in order; stop at one Kafka refuses.

        A job dead-lettered more than once is replayed from its newest dead
        letter only: replaying each would queue the job several times.
        """
        jobs = self._job_rows([d.job_id for d in letters if _is_uuid(d.job_id)])
        done = replays(self._conn, letters[0].topic) if letters else {}
        newest = {d.job_id: d for d in sorted(letters, key=_position)}
        results = []
        for letter in sorted(letters, key=_position):
            if letter.command is not None and newest[letter.job_id] is not letter:
                detail = "a newer dead letter of this job is replayed instead"
                results.append(
                    ReplayResult(letter, ReplayOutcome.SKIPPED, detail=detail)
                )
                continue
            results.append(self._one(letter, jobs, done, again, dry_run))
            if results[-1].outcome is ReplayOutcome.FAILED:
                break
        return results

    def _one(
        self,
        letter: DeadLetter,
        jobs: dict[str, dict[str, Any]],
        done: dict[tuple[int, int], Replay],
        again: bool,
        dry_run: bool,
    ) -> ReplayResult:
        if letter.command is None:
            return ReplayResult(letter, ReplayOutcome.SKIPPED, detail="does not decode")
        if not _is_uuid(letter.job_id):
            detail = "its job id is not a job id Switchboard makes"
            return ReplayResult(letter, ReplayOutcome.SKIPPED, detail=detail)
        previous = done.get((letter.partition, letter.offset))
        if previous is not None and not again:
            detail = f"at {previous.replayed_at:%Y-%m-%d %H:%M:%S}; use --again"
            return ReplayResult(letter, ReplayOutcome.ALREADY_REPLAYED, detail=detail)
        row = jobs.get(str(letter.job_id))
        if row is not None and _not_replayable(row["state"], again):
            detail = f"job is {row['state']}"
            return ReplayResult(letter, ReplayOutcome.SKIPPED, detail=detail)
        command = next_command(letter.command, row)
        if dry_run:
            return ReplayResult(letter, ReplayOutcome.WOULD_REPLAY, command["attempt"])
        return self._replay(letter, command, again)

    def _replay(
        self, letter: DeadLetter, command: dict[str, Any], again: bool
    ) -> ReplayResult:
        # The claims and the acknowledged produce share one transaction: a
        # produce that fails, or a claim someone else holds, rolls them back.
        try:
            with self._conn.transaction():
                if not self._claim(letter, command["attempt"], again):
                    raise _Refused(ReplayResult(letter, ReplayOutcome.ALREADY_REPLAYED))
                # The job's row says dead until the recorder reads the queued
                # event, so an API retry or `jobs retry` since may hold this
                # attempt already; --again sends it regardless.
                claimed = claim_retry(self._conn, letter.job_id, command["attempt"])
                if not claimed and not again:
                    detail = f"attempt {command['attempt']} is already queued"
                    skipped = ReplayResult(letter, ReplayOutcome.SKIPPED, detail=detail)
                    raise _Refused(skipped)
                queue_command(self._producer, self._codec, command)
        except _Refused as refused:
            return refused.result
        except ApiError as error:
            problem = "; ".join(text for _field, text in error.problems)
            return ReplayResult(letter, ReplayOutcome.FAILED, detail=problem)
        log.info(
            "dead letter replayed",
            extra={
                "topic": letter.topic,
                "partition": letter.partition,
                "offset": letter.offset,
                "job_id": letter.job_id,
                "attempt": command["attempt"],
            },
        )
        return ReplayResult(letter, ReplayOutcome.REPLAYED, command["attempt"])

    def _claim(self, letter: DeadLetter, attempt: int, again: bool) -> bool:
        on_conflict = (
            "DO UPDATE SET replay_count = dlq_replays.replay_count + 1,"
            " attempt = EXCLUDED.attempt, replayed_at = now()"
            if again
            else "DO NOTHING"
        )
        claimed = self._conn.execute(
            "INSERT INTO dlq_replays"
            " (topic, kafka_partition, kafka_offset, job_id, attempt)"
            " VALUES (%s, %s, %s, %s, %s)"
            f" ON CONFLICT (topic, kafka_partition, kafka_offset) {on_conflict}"
            " RETURNING replay_count",
            (letter.topic, letter.partition, letter.offset, letter.job_id, attempt),
        ).fetchone()
        return claimed is not None

    def _job_rows(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not job_ids:
            return {}
        with self._conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(
                "SELECT job_id, state, attempts, state_attempt FROM notification_jobs"
                " WHERE job_id = ANY(%s::uuid[])",
                (job_ids,),
            ).fetchall()
        return {str(row["job_id"]): row for row in rows}


def next_command(command: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    """The command of the job's next attempt: after the dead one and any retry since."""
    attempts = [int(command["attempt"])]
    if row is not None:
        attempts += [row["attempts"], row["state_attempt"]]
    return {**command, "attempt": max(attempts) + 1, "not_before": None}


def _is_uuid(text: str | None) -> bool:
    try:
        uuid.UUID(text or "")
    except ValueError:
        return False
    return True


def _position(letter: DeadLetter) -> tuple[int, int]:
    return letter.partition, letter.offset


def _not_replayable(state: str, again: bool) -> bool:
    # A delivered job is done. A queued or retrying one is already on its way
    # (retried since it died); --again says to send it once more regardless.
    if state == JobState.DELIVERED:
        return True
    return state in (JobState.QUEUED, JobState.RETRYING) and not again
