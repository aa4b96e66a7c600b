"""The outbox relay: publishes ``config_outbox`` rows to ``notify.config`` and
``job_outbox`` rows to ``notify.jobs``, each in order.

One relay at a time holds a PostgreSQL advisory lock; others wait for it, so
two relays never publish out of order. The holder reads unpublished rows of
each table in id order (configuration first, so a long copied job history never
delays a customer's change by more than a batch), produces them with an
idempotent producer, waits until Kafka has acknowledged every one, and only
then marks them published. A crash between
the two steps publishes those rows again on restart (at least once); consumers
apply ConfigEvents per key and the recorder applies job events idempotently, so
a repeat changes nothing. The relay LISTENs for
the API's NOTIFY and also polls, so a change is out within about a second.

A row Kafka can never take (too large, an invalid record) would otherwise stop
every later change of every tenant: it is marked failed, logged once and
counted, and the rows behind it go on. Failures that may pass (a broker down, a
timeout) stop the relay at that row and it tries again, in order.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from dataclasses import dataclass

import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import Counter, Gauge

from services.api.outbox import (
    CONFIG_OUTBOX,
    JOB_OUTBOX,
    NOTIFY_CHANNEL,
    backlog,
    job_backlog,
)
from switchboard.kafka import make_producer
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC, JOBS_TOPIC

log = logging.getLogger(__name__)

# Arbitrary, fixed: the advisory lock only relays take.
RELAY_LOCK_ID = 0x5357_4F42
BATCH_SIZE = 500
POLL_INTERVAL_S = 1.0
ACK_TIMEOUT_S = 30.0
RECONNECT_DELAY_S = 2.0
# Published rows are kept a while for operators to inspect, then removed; the
# compacted topic, not the table, is the history consumers read.
PUBLISHED_RETENTION_DAYS = 7
PURGE_INTERVAL_S = 600.0

# Kafka refuses these for the record itself, so producing it again fails the
# same way: the row is marked failed instead of blocking every later change.
PERMANENT_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
    }
)

PUBLISHED = Counter(
    "switchboard_relay_published_total",
    "Outbox rows published to notify.config or notify.jobs.",
)
FAILED = Counter(
    "switchboard_relay_failed_total",
    "Outbox rows Kafka refused for good, marked failed and skipped.",
    ["code"],
)
LEADER = Gauge("switchboard_relay_leader", "1 while this relay holds the relay lock.")


class RelayError(Exception):
    """Raised when Kafka did not acknowledge a batch for a reason that may pass."""


@dataclass(frozen=True)
class OutboxRow:
    """One unpublished outbox row."""

    id: int
    key: str
    payload: bytes | None


@dataclass(frozen=True)
class Stream:
    """An outbox table and the topic its rows are published to."""

    table: str
    topic: str


class OutboxRelay:
    """Publishes the configuration and job-event outboxes while it holds the lock."""

    def __init__(
        self,
        settings: Settings,
        topic: str = CONFIG_TOPIC,
        jobs_topic: str = JOBS_TOPIC,
    ) -> None:
        """Prepare a relay for ``topic`` and ``jobs_topic``; :meth:`run` works."""
        self._settings = settings
        self._topic = topic
        self._streams = (Stream(CONFIG_OUTBOX, topic), Stream(JOB_OUTBOX, jobs_topic))
        self._stopping = threading.Event()
        self._producer: Producer = make_producer(settings)

    def stop(self) -> None:
        """Ask :meth:`run` to return after its current step."""
        self._stopping.set()

    def start_thread(self) -> threading.Thread:
        """Run the relay in a daemon thread (used inside the API process)."""
        thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        """Publish until stopped, reconnecting after database or Kafka failures."""
        try:
            while not self._stopping.is_set():
                try:
                    self._session()
                except (
                    psycopg.Error,
                    KafkaException,
                    BufferError,
                    RelayError,
                ) as error:
                    log.warning("relay interrupted", extra={"error": str(error)})
                    LEADER.set(0)
                    self._stopping.wait(RECONNECT_DELAY_S)
        finally:
            self._producer.flush(ACK_TIMEOUT_S)

    def _session(self) -> None:
        with psycopg.connect(self._settings.database_url, autocommit=True) as conn:
            while not self._stopping.is_set() and not self._try_lock(conn):
                self._stopping.wait(POLL_INTERVAL_S)
            if self._stopping.is_set():
                return
            LEADER.set(1)
            log.info("relay holds the outbox lock", extra={"topic": self._topic})
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            next_purge = time.monotonic()
            while not self._stopping.is_set():
                while self.publish_batch(conn) >= BATCH_SIZE:
                    pass
                backlog(conn)
                if _exists(conn, JOB_OUTBOX):
                    job_backlog(conn)
                if time.monotonic() >= next_purge:
                    self.purge_published(conn)
                    next_purge = time.monotonic() + PURGE_INTERVAL_S
                # Sleep until the API's NOTIFY or the poll interval, whichever
                # comes first; polling also covers writers that do not notify.
                list(conn.notifies(timeout=POLL_INTERVAL_S, stop_after=1))
            LEADER.set(0)

    @staticmethod
    def _try_lock(conn: psycopg.Connection) -> bool:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_ID,)
        ).fetchone()
        return bool(row and row[0])

    def publish_batch(self, conn: psycopg.Connection) -> int:
        """Publish up to one batch of each outbox; how many rows were settled.

        A row Kafka refuses for good is marked failed and the rest go on; any
        other failure raises :class:`RelayError` and the batch is sent again.
        """
        settled = 0
        for stream in self._streams:
            # A database not yet migrated to the job outbox still gets its
            # configuration changes published.
            if stream.table == CONFIG_OUTBOX or _exists(conn, stream.table):
                settled += self._publish_stream(conn, stream)
        return settled

    def _publish_stream(self, conn: psycopg.Connection, stream: Stream) -> int:
        rows = self._pending(conn, stream.table)
        if not rows:
            return 0

        failures, from_broker = self._produce_acknowledged(rows, stream.topic)
        _raise_if_passing(failures)
        if from_broker and failures:
            # The broker fails a whole record batch for one bad record, so send
            # the rows again one at a time, in order, to learn which it refuses.
            failures = self._produce_one_by_one(rows, stream.topic)

        refused = {i: e for i, e in failures.items() if _permanent(e)}
        refused_rows = [row for row in rows if row.id in refused]
        self._mark_failed(conn, stream, refused_rows, refused)
        _raise_if_passing(failures)

        published = [row.id for row in rows if row.id not in refused]
        conn.execute(
            f"UPDATE {stream.table} SET published_at = now() WHERE id = ANY(%s)",
            (published,),
        )
        PUBLISHED.inc(len(published))
        log.debug(
            "outbox rows published",
            extra={"count": len(published), "topic": stream.topic},
        )
        return len(rows)

    @staticmethod
    def _pending(conn: psycopg.Connection, table: str) -> list[OutboxRow]:
        return [
            OutboxRow(*row)
            for row in conn.execute(
                f"SELECT id, message_key, payload FROM {table}"
                " WHERE published_at IS NULL AND failed_at IS NULL"
                " ORDER BY id LIMIT %s",
                (BATCH_SIZE,),
            )
        ]

    def _produce_one_by_one(
        self, rows: list[OutboxRow], topic: str
    ) -> dict[int, KafkaError]:
        failures: dict[int, KafkaError] = {}
        for row in rows:
            failures.update(self._produce_acknowledged([row], topic)[0])
            if row.id in failures and not _permanent(failures[row.id]):
                break
        return failures

    @staticmethod
    def _mark_failed(
        conn: psycopg.Connection,
        stream: Stream,
        rows: list[OutboxRow],
        errors: dict[int, KafkaError],
    ) -> None:
        for row in rows:
            error = errors[row.id]
            conn.execute(
                f"UPDATE {stream.table} SET failed_at = now(), error = %s"
                " WHERE id = %s",
                (error.str(), row.id),
            )
            FAILED.labels(error.name()).inc()
            log.error(
                "outbox row refused by Kafka, skipped",
                extra={
                    "outbox_id": row.id,
                    "key": row.key,
                    "topic": stream.topic,
                    "error": error.str(),
                    "size": len(row.payload or b""),
                },
            )

    @staticmethod
    def purge_published(conn: psycopg.Connection) -> int:
        """Delete rows published more than the retention ago; how many were."""
        deleted = 0
        for table in (CONFIG_OUTBOX, JOB_OUTBOX):
            if table == CONFIG_OUTBOX or _exists(conn, table):
                deleted += conn.execute(
                    f"DELETE FROM {table} WHERE published_at < now() - make_interval("
                    "days => %s)",
                    (PUBLISHED_RETENTION_DAYS,),
                ).rowcount
        if deleted:
            log.info("published outbox rows purged", extra={"count": deleted})
        return deleted

    def _produce_acknowledged(
        self, rows: list[OutboxRow], topic: str
    ) -> tuple[dict[int, KafkaError], bool]:
        """Produce ``rows`` and wait for Kafka.

        Returns the error of each row not delivered, and whether any of them
        came from the broker (which reports per batch, not per record).
        """
        failures: dict[int, KafkaError] = {}
        from_broker = False

        def delivered(row_id: int, error: KafkaError | None, _msg: Message) -> None:
            nonlocal from_broker
            if error is not None:
                failures[row_id] = error
                from_broker = True

        for row in rows:
            try:
                self._producer.produce(
                    topic,
                    key=row.key.encode(),
                    value=row.payload,
                    on_delivery=functools.partial(delivered, row.id),
                )
            except KafkaException as error:
                # A record larger than the producer allows is refused right here.
                if not _permanent(error.args[0]):
                    raise
                failures[row.id] = error.args[0]
        remaining = self._producer.flush(ACK_TIMEOUT_S)
        if remaining:
            raise RelayError(f"publishing the outbox failed: {remaining} not acked")
        return failures, from_broker


def _exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return bool(row and row[0] is not None)


def _permanent(error: KafkaError) -> bool:
    return error.code() in PERMANENT_ERRORS


def _raise_if_passing(failures: dict[int, KafkaError]) -> None:
    """Raise :class:`RelayError` if a failure may pass, so the batch is resent."""
    for error in failures.values():
        if not _permanent(error):
            raise RelayError(f"publishing the outbox failed: {error.str()}")


def run_relay(settings: Settings) -> None:
    """Run a relay in the foreground until SIGINT or SIGTERM (``switchboard relay``)."""
    relay = OutboxRelay(settings)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: relay.stop())
    relay.run()
