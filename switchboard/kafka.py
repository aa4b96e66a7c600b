"""Thin, typed constructors for confluent-kafka clients with Switchboard's defaults.

Services build their producers and consumers here so that every client agrees on
delivery guarantees: idempotent producers acknowledged by all replicas, consumers
that never auto-commit or auto-store offsets, read-committed isolation, and
cooperative rebalancing.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from switchboard.settings import Settings

log = logging.getLogger(__name__)


# While a broker is down librdkafka reports the same error many times a second;
# one line per kind of error per interval is enough to see what is going on.
CLIENT_ERROR_LOG_INTERVAL_S = 30.0
_last_logged: dict[tuple[int, str], float] = {}

# librdkafka queues client errors until the client next polls. A producer that
# sits idle (the API's, between test and retry requests) would report an outage
# that ended minutes ago as if it were happening now, so the errors it serves
# right after an idle spell are of unknown age and logged at DEBUG only. An
# outage still going on shows again within seconds, as the client keeps polling
# while it waits for its acknowledgements, and on use as a failed produce.
IDLE_S = 5.0
# The queued errors are served by the first poll of the call that ends the idle
# spell, within a millisecond; the margin is for a busy interpreter.
BACKLOG_S = 0.5


class ServeClock:
    """When a producer last served its callbacks, to tell a backlog from news."""

    def __init__(self) -> None:
        """A clock whose client has just been created (not idle)."""
        self._lock = threading.Lock()
        self._active = 0
        self._last = time.monotonic()
        self._backlog_until = 0.0
        self._idle_s = 0.0

    def enter(self) -> None:
        """A poll or flush begins; after an idle spell, its first errors are old."""
        with self._lock:
            now = time.monotonic()
            if self._active == 0 and now - self._last > IDLE_S:
                self._idle_s = now - self._last
                self._backlog_until = now + BACKLOG_S
            self._active += 1
            self._last = now

    def leave(self) -> None:
        """A poll or flush returned."""
        with self._lock:
            self._active -= 1
            self._last = time.monotonic()

    def backlog_idle_s(self) -> float | None:
        """How long the client had been idle, while it serves that backlog; or None."""
        with self._lock:
            if time.monotonic() < self._backlog_until:
                return self._idle_s
            return None


def _log_client_error(error: KafkaError, clock: ServeClock | None = None) -> None:
    # librdkafka reports transient broker problems here and recovers by itself;
    # only fatal errors need the caller's attention, and they surface on use.
    if clock is not None and not error.fatal():
        idle_s = clock.backlog_idle_s()
        if idle_s is not None:
            log.debug(
                "kafka client error queued while idle",
                extra={"error": error.str(), "idle_s": round(idle_s, 1)},
            )
            return
    now = time.monotonic()
    key = (error.code(), error.str())
    if (
        not error.fatal()
        and now - _last_logged.get(key, -1e9) < CLIENT_ERROR_LOG_INTERVAL_S
    ):
        return
    _last_logged[key] = now
    level = logging.ERROR if error.fatal() else logging.WARNING
    log.log(level, "kafka client error", extra={"error": error.str()})


# librdkafka's own log lines: only its critical ones, since error_cb already
# reports errors. They go through the logger below rather than straight to
# stderr, so they keep the process's log format.
LIBRDKAFKA_LOG_LEVEL = 2


class _LibrdkafkaLog:
    """What confluent-kafka calls with librdkafka's log lines (its ``logger``)."""

    def __init__(self) -> None:
        self._log = logging.getLogger(f"{__name__}.librdkafka")

    def log(
        self, level: int, _format: str, facility: str, client: str, text: str
    ) -> None:
        """Log one librdkafka line as a constant message with fields."""
        self._log.log(
            level,
            "librdkafka log",
            extra={"facility": facility, "client": client, "detail": text},
        )


def client_logging(clock: ServeClock | None = None) -> dict[str, Any]:
    """The error callback, log level and logger every client of the project uses.

    With a ``clock`` (see :func:`make_producer`), errors a client served just
    after an idle spell are logged at DEBUG only.
    """
    return {
        "error_cb": functools.partial(_log_client_error, clock=clock),
        "log_level": LIBRDKAFKA_LOG_LEVEL,
        "logger": _LibrdkafkaLog(),
    }


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Configuration of an idempotent producer acknowledged by all replicas."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        **client_logging(),
    }
    config.update(overrides)
    return config


class ClockedProducer(Producer):
    """A producer whose polls and flushes keep its :class:`ServeClock`."""

    clock: ServeClock

    def poll(self, *args: Any, **kwargs: Any) -> int:
        """Serve callbacks, as :meth:`Producer.poll`."""
        self.clock.enter()
        try:
            return super().poll(*args, **kwargs)
        finally:
            self.clock.leave()

    def flush(self, *args: Any, **kwargs: Any) -> int:
        """Wait for acknowledgements, as :meth:`Producer.flush`."""
        self.clock.enter()
        try:
            return super().flush(*args, **kwargs)
        finally:
            self.clock.leave()


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer; errors it had queued while idle are not news."""
    clock = ServeClock()
    producer = ClockedProducer(
        producer_config(settings, **{**client_logging(clock), **overrides})
    )
    producer.clock = clock
    return producer


# Batches commit within milliseconds; a short timeout lets the broker abort a
# crashed process's open transaction quickly, so read-committed consumers
# downstream are not held back by it for long.
TRANSACTION_TIMEOUT_MS = 15_000


def make_transactional_producer(
    settings: Settings, transactional_id: str, **overrides: Any
) -> Producer:
    """A transactional producer with ``init_transactions`` already done."""
    options = {
        "transactional.id": transactional_id,
        "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
    }
    options.update(overrides)
    producer = Producer(producer_config(settings, **options))
    producer.init_transactions(30.0)
    return producer


def consumer_config(
    settings: Settings, group_id: str, **overrides: Any
) -> dict[str, Any]:
    """Configuration of a group consumer that stores offsets only when told."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": 300_000,
        "client.id": process_client_id(group_id),
        **client_logging(),
    }
    config.update(overrides)
    return config


def process_client_id(role: str) -> str:
    """``<role>@<host>:<pid>``: the client id an operator finds a process by.

    Consumer groups list their members by client id and address; with every
    process on one host sharing an address, the pid in the id is what tells
    the owner of a stuck partition apart.
    """
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def make_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A group consumer; offsets are committed explicitly by the caller."""
    return Consumer(consumer_config(settings, group_id, **overrides))


def make_admin(settings: Settings) -> AdminClient:
    """An admin client for the configured cluster."""
    return AdminClient(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            **client_logging(),
        }
    )


def raise_on_error(message: Message) -> None:
    """Raise if a polled message carries an error other than end-of-partition."""
    error = message.error()
    if error is not None and error.code() != KafkaError._PARTITION_EOF:
        raise KafkaException(error)


def header_value(message: Message, name: str) -> str | None:
    """The first header ``name`` of a message, decoded as UTF-8."""
    for key, value in message.headers() or []:
        if key == name and value is not None:
            return value.decode("utf-8", errors="replace")
    return None
