"""Consuming one channel type's main topic or retry tiers without blocking asyncio.

``consume`` runs in a dedicated thread with a short timeout, so the event loop
keeps sending while the consumer waits for messages. Each message becomes a
task bounded by the process-wide slot count; its offset is stored only after the
pipeline made its outcome durable, in offset order per partition.

On the retry tiers a message that is not yet due holds its partition: the
partition is paused and the consumer seeks back to that message, and it resumes
when the message is due. The consumer keeps polling meanwhile, so it stays in
its group however long the delay, and other partitions keep flowing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from services.deliverer.lookup import DeliveredLookup
from services.deliverer.offsets import OffsetTracker, PartitionProgress
from services.deliverer.pipeline import Incoming, Pipeline
from services.deliverer.topology import TypeTopics
from switchboard.codec import Codec, CodecError
from switchboard.kafka import make_consumer
from switchboard.settings import Settings

log = logging.getLogger(__name__)

CONSUME_BATCH = 500
CONSUME_TIMEOUT_S = 0.1
AUTO_COMMIT_INTERVAL_MS = 1000


class RetryGate:
    """Holds back retry partitions whose head message is not due yet."""

    def __init__(self, consumer: Consumer) -> None:
        """Pause and resume partitions of ``consumer``."""
        self._consumer = consumer
        self._held: dict[tuple[str, int], float] = {}
        self._unsought: dict[tuple[str, int], TopicPartition] = {}

    def is_held(self, message: Message) -> bool:
        """Whether the message's partition is held (the message will come again)."""
        return (message.topic(), message.partition()) in self._held

    def hold(self, message: Message, due: datetime) -> None:
        """Pause the message's partition and rewind it to the message."""
        position = TopicPartition(
            message.topic(), message.partition(), message.offset()
        )
        self._consumer.pause([position])
        key = (message.topic(), message.partition())
        self._held[key] = due.timestamp()
        self._unsought[key] = position
        self._seek(key)

    def release_due(self) -> None:
        """Resume every held partition whose head is due now and is rewound."""
        now = time.time()
        due = [
            key for key, due_s in self._held.items() if due_s <= now and self._seek(key)
        ]
        if due:
            self._consumer.resume([TopicPartition(topic, p) for topic, p in due])
            for key in due:
                del self._held[key]

    def _seek(self, key: tuple[str, int]) -> bool:
        # Resuming without the rewind would skip the held message and let later
        # offsets be stored past it, so a failed seek is retried until it works.
        position = self._unsought.get(key)
        if position is None:
            return True
        try:
            self._consumer.seek(position)
        except KafkaException as error:
            log.warning(
                "seek back failed; partition stays held",
                extra={"topic": key[0], "partition": key[1], "error": str(error)},
            )
            return False
        del self._unsought[key]
        return True

    def forget(self, partitions: list[tuple[str, int]]) -> None:
        """Drop revoked partitions."""
        for key in partitions:
            self._held.pop(key, None)
            self._unsought.pop(key, None)


class CommandConsumer:
    """Feeds one channel type's main topic, or its retry tiers, to the pipeline."""

    def __init__(
        self,
        settings: Settings,
        topics: TypeTopics,
        retry: bool,
        pipeline: Pipeline,
        lookup: DeliveredLookup,
        codec: Codec,
        slots: asyncio.Semaphore,
    ) -> None:
        """Prepare a consumer for ``topics`` (retry tiers if ``retry``)."""
        self._settings = settings
        self._topics = topics
        self._retry = retry
        self._pipeline = pipeline
        self._lookup = lookup
        self._codec = codec
        self._slots = slots
        self._tracker = OffsetTracker()
        self._pending_lock = threading.Lock()
        self._pending_offsets: dict[tuple[str, int], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer: Consumer | None = None
        self._gate: RetryGate | None = None
        self.failure: BaseException | None = None

    @property
    def name(self) -> str:
        """The group this consumer belongs to."""
        return self._topics.retry_group if self._retry else self._topics.group

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until ``stopping`` is set, then finish in-flight work and close."""
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(1, thread_name_prefix=self.name)
        consumer = make_consumer(
            self._settings,
            self.name,
            **{
                # Commits only what store_offsets stored, also on revoke and close.
                "enable.auto.commit": True,
                "auto.commit.interval.ms": AUTO_COMMIT_INTERVAL_MS,
            },
        )
        self._consumer = consumer
        self._gate = RetryGate(consumer) if self._retry else None
        subscribed = self._topics.retry_topics if self._retry else [self._topics.main]
        consumer.subscribe(
            subscribed, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        log.info("consumer started", extra={"group": self.name, "topics": subscribed})
        try:
            await self._loop(loop, executor, consumer, stopping)
        except BaseException as error:
            self.failure = error
            stopping.set()
            raise
        finally:
            await self._drain()
            await loop.run_in_executor(executor, self._flush_offsets)
            await loop.run_in_executor(executor, consumer.close)
            executor.shutdown(wait=False)

    async def _loop(
        self,
        loop: asyncio.AbstractEventLoop,
        executor: ThreadPoolExecutor,
        consumer: Consumer,
        stopping: asyncio.Event,
    ) -> None:
        while not stopping.is_set():
            if self._gate is not None:
                self._gate.release_due()
            messages = await loop.run_in_executor(executor, self._store_and_consume)
            if messages:
                await self._dispatch(messages, stopping)

    def _store_and_consume(self) -> list[Message]:
        """Store the offsets that advanced, then consume; runs in the consumer thread.

        ``store_offsets`` can block for milliseconds while ``consume`` runs, so
        it is called here, batched, rather than from the event loop.
        """
        self._flush_offsets()
        return self._consumer.consume(CONSUME_BATCH, CONSUME_TIMEOUT_S)

    def _flush_offsets(self) -> None:
        with self._pending_lock:
            pending, self._pending_offsets = self._pending_offsets, {}
        if not pending or self._consumer is None:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in pending.items()]
        try:
            self._consumer.store_offsets(offsets=offsets)
        except KafkaException as error:
            # A partition was revoked meanwhile; its next owner redoes the rest.
            log.debug("offsets not stored", extra={"error": str(error)})

    async def _dispatch(self, messages: list[Message], stopping: asyncio.Event) -> None:
        items = [item for item in map(self._admit, messages) if item is not None]
        job_ids = [item.command["job_id"] for item in items if item.command]
        delivered = await self._lookup.delivered(job_ids)
        for item in items:
            await self._slots.acquire()
            progress = self._tracker.begin(item.topic, item.partition, item.offset)
            is_delivered = bool(item.command) and item.command["job_id"] in delivered
            task = asyncio.create_task(
                self._process(item, progress, is_delivered, stopping)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _admit(self, message: Message) -> Incoming | None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning(
                    "consume error", extra={"group": self.name, "error": error.str()}
                )
            return None
        if self._gate is not None and self._gate.is_held(message):
            return None
        item = self._decode(message)
        if self._gate is not None and item.command is not None:
            not_before = item.command.get("not_before")
            if not_before is not None and not_before.timestamp() > time.time():
                self._gate.hold(message, not_before)
                return None
        return item

    def _decode(self, message: Message) -> Incoming:
        try:
            command = self._codec.decode("DeliveryCommand", message.value() or b"")
            error = None
        except CodecError as codec_error:
            command, error = None, str(codec_error)
        return Incoming(
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
            value=message.value(),
            command=command,
            decode_error=error,
        )

    async def _process(
        self,
        item: Incoming,
        progress: PartitionProgress,
        delivered: bool,
        stopping: asyncio.Event,
    ) -> None:
        try:
            await self._pipeline.handle(item, self._topics.channel_type, delivered)
        except Exception as error:
            # Kafka did not take what the outcome needs (the pipeline turns
            # every other error into a dead letter), so the offset must not
            # move: stop, and let the next owner of the partition redo it.
            log.exception(
                "delivery outcome could not be made durable; stopping",
                extra={
                    "topic": item.topic,
                    "partition": item.partition,
                    "offset": item.offset,
                },
            )
            self.failure = error
            stopping.set()
        else:
            self._store(progress, item.offset)
        finally:
            self._slots.release()

    def _store(self, progress: PartitionProgress, offset: int) -> None:
        next_offset = self._tracker.finish(progress, offset)
        if next_offset is not None:
            with self._pending_lock:
                self._pending_offsets[(progress.topic, progress.partition)] = (
                    next_offset
                )

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside consume: store what is durable so the commit on revoke
        # carries it, then forget the partitions.
        self._flush_offsets()
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._tracker.forget(keys)
        if self._gate is not None:
            self._gate.forget(keys)
