"""Kafka from asyncio: a producer whose sends are awaited until the broker acks.

confluent-kafka reports acknowledgements through delivery callbacks served by
``poll``; a background thread polls and settles one asyncio future per message,
so a coroutine can ``await`` exactly the durability it needs before storing an
input offset.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from switchboard.kafka import make_producer
from switchboard.settings import Settings

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05
# librdkafka's local queue is full: give the poll thread a moment to drain it.
QUEUE_FULL_BACKOFF_S = 0.01
FLUSH_TIMEOUT_S = 30.0

Headers = list[tuple[str, str | bytes]]


class DeliveryFailed(Exception):
    """Raised when the broker did not acknowledge a message that had to be durable."""


# What :meth:`AsyncProducer.send` raises when Kafka did not take a message:
# refused by the client (KafkaException) or not acknowledged (DeliveryFailed).
KAFKA_FAILURES: tuple[type[Exception], ...] = (DeliveryFailed, KafkaException)


class AsyncProducer:
    """An idempotent producer whose :meth:`send` returns after the broker's ack."""

    def __init__(self, settings: Settings, **overrides: Any) -> None:
        """Create the producer; :meth:`start` begins serving acknowledgements."""
        self._producer = make_producer(settings, **overrides)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._poll, name="producer-poll", daemon=True
        )

    def start(self) -> None:
        """Start the thread that serves delivery callbacks."""
        self._thread.start()

    async def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> None:
        """Produce one message and wait until the broker acknowledged it."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            loop.call_soon_threadsafe(_settle, acked, error)

        while True:
            try:
                self._producer.produce(
                    topic, value, key, headers=headers, on_delivery=on_delivery
                )
                break
            except BufferError:
                await asyncio.sleep(QUEUE_FULL_BACKOFF_S)
        await acked

    def close(self) -> None:
        """Deliver what is queued, then stop the poll thread."""
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
        if remaining:
            log.error(
                "producer closed with unacknowledged messages",
                extra={"count": remaining},
            )
        self._stopping.set()
        self._thread.join(timeout=5.0)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(POLL_INTERVAL_S)


def _settle(acked: asyncio.Future[None], error: KafkaError | None) -> None:
    if acked.done():
        return
    if error is None:
        acked.set_result(None)
    else:
        acked.set_exception(DeliveryFailed(str(KafkaException(error))))
