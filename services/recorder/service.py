"""The recorder process: ``switchboard recorder``.

Consumes notify.jobs in group ``switchboard.recorder`` and applies the events to
the job tables in batches, one database transaction per batch. Offsets are
committed only after that transaction committed, so a crash repeats at most a
batch, which applying idempotently makes harmless.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from services.recorder.store import apply_events, storable
from switchboard.codec import CodecError, default_codec
from switchboard.kafka import make_consumer
from switchboard.settings import Settings
from switchboard.topics import JOBS_TOPIC, RECORDER_GROUP

log = logging.getLogger(__name__)

BATCH_MAX = 2000
BATCH_WAIT_S = 0.2
RECONNECT_DELAYS_S = (0.5, 1, 2, 5, 10)


class Recorder:
    """Writes notify.jobs into notification_jobs and notification_log."""

    def __init__(
        self,
        settings: Settings,
        *,
        topic: str = JOBS_TOPIC,
        group: str = RECORDER_GROUP,
        database_url: str | None = None,
    ) -> None:
        """Record ``topic`` into the database (default: the configured one)."""
        self._topic = topic
        self._database_url = database_url or settings.database_url
        self._codec = default_codec()
        self._consumer = make_consumer(settings, group)
        self._consumer.subscribe([topic])
        self._conn: psycopg.Connection | None = None

    def step(self, timeout_s: float = BATCH_WAIT_S) -> int:
        """Record one batch; returns how many messages it consumed."""
        messages = [
            m
            for m in self._consumer.consume(BATCH_MAX, timeout=timeout_s)
            if _usable(m)
        ]
        if not messages:
            return 0
        events = [event for m in messages if (event := self._decode(m)) is not None]
        started = time.monotonic()
        stored = self._apply(events)
        self._commit(messages)
        log.debug(
            "batch recorded",
            extra={
                "events": stored,
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
        )
        return len(messages)

    def run(self, stopping: threading.Event) -> None:
        """Record until ``stopping`` is set."""
        log.info("recorder started", extra={"topic": self._topic})
        while not stopping.is_set():
            self.step()

    def close(self) -> None:
        """Leave the group and close the database connection."""
        self._consumer.close()
        if self._conn is not None:
            self._conn.close()

    def _decode(self, message: Message) -> dict[str, Any] | None:
        try:
            event = self._codec.decode("JobEvent", message.value() or b"")
        except CodecError as error:
            # notify.jobs has no dead-letter topic; its producers are our own
            # services, so an undecodable event is a bug to look at, not data.
            log.error(
                "undecodable job event skipped",
                extra={
                    "topic": message.topic(),
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "error": str(error),
                },
            )
            return None
        if not storable(event):
            log.error(
                "job event with non-uuid ids skipped",
                extra={"job_id": event["job_id"], "offset": message.offset()},
            )
            return None
        return event

    def _apply(self, events: list[dict[str, Any]]) -> int:
        for delay_s in (*RECONNECT_DELAYS_S, None):
            try:
                return apply_events(self._connection(), events)
            except psycopg.OperationalError as error:
                self._drop_connection()
                if delay_s is None:
                    raise
                log.warning(
                    "database unavailable; retrying batch",
                    extra={"error": str(error), "delay_s": delay_s},
                )
                time.sleep(delay_s)
        raise AssertionError("unreachable")

    def _commit(self, messages: list[Message]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            key = (message.topic(), message.partition())
            next_offsets[key] = max(next_offsets.get(key, 0), message.offset() + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            # Revoked meanwhile: the next owner re-applies, idempotently.
            log.warning("offset commit failed", extra={"error": str(error)})

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._database_url, autocommit=True)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def _usable(message: Message) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("consume error", extra={"error": error.str()})
    return False


def run_recorder(settings: Settings) -> None:
    """Run the recorder in this process until SIGINT or SIGTERM."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    recorder = Recorder(settings)
    try:
        recorder.run(stopping)
    finally:
        recorder.close()
