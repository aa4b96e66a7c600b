"""The outbox relay: publishes ``config_outbox`` rows to ``notify.config`` in order.

One relay at a time holds a PostgreSQL advisory lock; others wait for it, so
two relays never publish out of order. The holder reads unpublished rows in id
order, produces them with an idempotent producer, waits until Kafka has
acknowledged every one, and only then marks them published. A crash between
the two steps publishes those rows again on restart (at least once); consumers
apply ConfigEvents per key, so a repeat changes nothing. The relay LISTENs for
the API's NOTIFY and also polls, so a change is out within about a second.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass

import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from prometheus_client import Counter, Gauge

from services.api.outbox import NOTIFY_CHANNEL
from switchboard.kafka import make_producer
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC

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

PUBLISHED = Counter(
    "switchboard_relay_published_total", "Outbox rows published to notify.config."
)
LEADER = Gauge("switchboard_relay_leader", "1 while this relay holds the relay lock.")


class RelayError(Exception):
    """Raised when Kafka did not acknowledge every message of a batch."""


@dataclass(frozen=True)
class OutboxRow:
    """One unpublished outbox row."""

    id: int
    key: str
    payload: bytes | None


class OutboxRelay:
    """Publishes the configuration outbox while it holds the relay lock."""

    def __init__(self, settings: Settings, topic: str = CONFIG_TOPIC) -> None:
        """Prepare a relay for ``topic``; :meth:`run` does the work."""
        self._settings = settings
        self._topic = topic
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
                while self.publish_batch(conn) == BATCH_SIZE:
                    pass
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
        """Publish up to one batch of unpublished rows; how many were published."""
        rows = [
            OutboxRow(*row)
            for row in conn.execute(
                "SELECT id, message_key, payload FROM config_outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT %s",
                (BATCH_SIZE,),
            )
        ]
        if not rows:
            return 0

        self._produce_acknowledged(rows)

        conn.execute(
            "UPDATE config_outbox SET published_at = now() WHERE id = ANY(%s)",
            ([row.id for row in rows],),
        )
        PUBLISHED.inc(len(rows))
        log.debug(
            "outbox rows published", extra={"count": len(rows), "last": rows[-1].id}
        )
        return len(rows)

    @staticmethod
    def purge_published(conn: psycopg.Connection) -> int:
        """Delete rows published more than the retention ago; how many were."""
        deleted = conn.execute(
            "DELETE FROM config_outbox WHERE published_at < now() - make_interval("
            "days => %s)",
            (PUBLISHED_RETENTION_DAYS,),
        ).rowcount
        if deleted:
            log.info("published outbox rows purged", extra={"count": deleted})
        return deleted

    def _produce_acknowledged(self, rows: list[OutboxRow]) -> None:
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error)

        for row in rows:
            self._producer.produce(
                self._topic,
                key=row.key.encode(),
                value=row.payload,
                on_delivery=delivered,
            )
        remaining = self._producer.flush(ACK_TIMEOUT_S)
        if remaining or failures:
            reason = failures[0].str() if failures else f"{remaining} not acknowledged"
            raise RelayError(f"publishing the outbox failed: {reason}")


def run_relay(settings: Settings) -> None:
    """Run a relay in the foreground until SIGINT or SIGTERM (``switchboard relay``)."""
    relay = OutboxRelay(settings)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: relay.stop())
    relay.run()
