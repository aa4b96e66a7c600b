"""The recorder process: ``switchboard recorder``.

Consumes notify.jobs in group ``switchboard.recorder`` and applies the events to
the job tables in batches, one database transaction per batch. Offsets are
committed only after that transaction committed, so a crash repeats at most a
batch, which applying idempotently makes harmless.

A database outage is waited out, however long it lasts: notify.jobs keeps the
events, so the recorder holds its batch, commits nothing, and retries with a
growing delay. Meanwhile it keeps polling with its partitions paused, so it
stays in its group (``max.poll.interval.ms`` never runs out) and notices a stop
request within half a second.
"""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from services.recorder.store import apply_events, storable
from switchboard.codec import CodecError, default_codec
from switchboard.db import connection_options, database_unavailable, error_line
from switchboard.kafka import make_consumer
from switchboard.settings import Settings, database_address
from switchboard.topics import JOBS_TOPIC, RECORDER_GROUP

log = logging.getLogger(__name__)

BATCH_MAX = 2000
BATCH_WAIT_S = 0.2
# Between tries while the database is down: quick at first, since most outages
# are a restart of seconds, then every 30 s for as long as it takes.
RETRY_DELAYS_S = (0.5, 1, 2, 5, 10, 20, 30)
# While waiting, the consumer polls at least this often: that keeps it in its
# group and bounds how long a stop request waits.
WAIT_POLL_S = 0.5
APPLICATION_NAME = "switchboard-recorder"


@dataclass
class _Outage:
    """A database outage the recorder is waiting out."""

    began: float = field(default_factory=time.monotonic)
    tries: int = 0
    delays_s: Iterator[float] = field(
        default_factory=lambda: itertools.chain(
            RETRY_DELAYS_S, itertools.repeat(RETRY_DELAYS_S[-1])
        )
    )


class Recorder:
    """Writes notify.jobs into notification_jobs and notification_log."""

    def __init__(
        self,
        settings: Settings,
        *,
        topic: str = JOBS_TOPIC,
        group: str = RECORDER_GROUP,
        database_url: str | None = None,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        """Record ``topic`` into the database (default: the configured one).

        ``consumer_options`` override the consumer's librdkafka settings.
        """
        self._topic = topic
        self._database_url = database_url or settings.database_url
        self._codec = default_codec()
        self._consumer = make_consumer(settings, group, **(consumer_options or {}))
        self._consumer.subscribe([topic])
        self._conn: psycopg.Connection | None = None

    def step(
        self, timeout_s: float = BATCH_WAIT_S, stopping: threading.Event | None = None
    ) -> int:
        """Record one batch; returns how many messages it consumed and recorded.

        While the database is unavailable the step waits and retries until the
        batch is stored; if ``stopping`` is set first, it returns 0 and commits
        nothing, so the batch is read again by whoever next owns its partitions.
        """
        messages = [
            m
            for m in self._consumer.consume(BATCH_MAX, timeout=timeout_s)
            if _usable(m)
        ]
        if not messages:
            return 0
        started = time.monotonic()
        stored = self._store(messages, stopping or threading.Event())
        if stored is None:
            return 0
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
            self.step(stopping=stopping)

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

    def _store(self, messages: list[Message], stopping: threading.Event) -> int | None:
        """Apply the batch, waiting out a database outage; None if stopped first.

        Messages that arrive while waiting (from partitions assigned meanwhile)
        are added to ``messages``, so the caller commits them with the batch.
        """
        events = self._events(messages)
        outage: _Outage | None = None
        while True:
            try:
                stored = apply_events(self._connection(), events)
            except psycopg.OperationalError as error:
                if not _worth_waiting_out(error):
                    raise
                self._drop_connection()
                outage = outage or self._outage_began(error, len(events))
                outage.tries += 1
                arrived = self._wait(next(outage.delays_s), stopping)
                if arrived is None:
                    log.info(
                        "recorder stopped during a database outage; batch not "
                        "committed",
                        extra={"events": len(events)},
                    )
                    return None
                messages.extend(arrived)
                events.extend(self._events(arrived))
                continue
            if outage is not None:
                self._outage_ended(outage)
            return stored

    def _events(self, messages: list[Message]) -> list[dict[str, Any]]:
        return [event for m in messages if (event := self._decode(m)) is not None]

    def _outage_began(self, error: psycopg.OperationalError, events: int) -> _Outage:
        log.warning(
            "database unavailable; recorder holds its batch and retries",
            extra={
                "database": database_address(self._database_url),
                "error": error_line(error),
                "events": events,
                "max_delay_s": RETRY_DELAYS_S[-1],
            },
        )
        # Paused partitions fetch nothing, so waiting holds no more in memory.
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        return _Outage()

    def _outage_ended(self, outage: _Outage) -> None:
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.resume(assignment)
        log.info(
            "database available again; recorder resumed",
            extra={
                "database": database_address(self._database_url),
                "outage_s": round(time.monotonic() - outage.began, 1),
                "tries": outage.tries + 1,
            },
        )

    def _wait(self, delay_s: float, stopping: threading.Event) -> list[Message] | None:
        """Poll paused for ``delay_s``; what arrived meanwhile, or None if stopped.

        Polling is what keeps the consumer in its group: librdkafka leaves the
        group when the application has not polled for max.poll.interval.ms.
        A partition assigned during the wait is not paused yet, so its first
        messages can arrive; they join the batch and the partition is paused.
        """
        deadline = time.monotonic() + delay_s
        arrived: list[Message] = []
        while not stopping.is_set():
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return arrived
            polled = self._consumer.consume(
                BATCH_MAX, timeout=min(WAIT_POLL_S, remaining_s)
            )
            new = [m for m in polled if _usable(m)]
            if new:
                partitions = {(m.topic(), m.partition()) for m in new}
                self._consumer.pause([TopicPartition(t, p) for t, p in partitions])
                arrived.extend(new)
        return None

    def _commit(self, messages: list[Message]) -> None:
        # A partition revoked while the batch waited out an outage belongs to
        # another member now; committing it could move that member's offset back.
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            key = (message.topic(), message.partition())
            if key not in assigned:
                continue
            next_offsets[key] = max(next_offsets.get(key, 0), message.offset() + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            # Revoked meanwhile: the next owner re-applies, idempotently.
            log.warning("offset commit failed", extra={"error": str(error)})

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._database_url,
                autocommit=True,
                **connection_options(APPLICATION_NAME),
            )
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def _worth_waiting_out(error: psycopg.OperationalError) -> bool:
    """Whether retrying the same batch later can succeed.

    True for a database that cannot be reached or used now, and for a
    transaction rolled back by a serialization failure or a deadlock with
    another recorder (SQLSTATE class 40); False for errors that would recur,
    such as a statement cancelled by its timeout.
    """
    sqlstate = error.sqlstate or ""
    return database_unavailable(error) or sqlstate.startswith("40")


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
