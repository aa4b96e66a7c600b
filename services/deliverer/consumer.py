"""Consuming one channel type's main topic or retry tiers without blocking asyncio.

``consume`` runs in a dedicated thread with a short timeout, so the event loop
keeps sending while the consumer waits for messages. Each message is tracked
from the moment it is consumed; its offset is stored only after the pipeline
made its outcome durable, in offset order per partition.

A consumed message starts as soon as the process's in-flight bound and its
channel's share of it allow (:class:`InFlightLimits`); until then it waits in
memory. The consumer never waits by not polling, which would get it evicted
from its group, and it never pauses a partition for one channel: messages of
every channel share a partition, so pausing it for one busy channel would make
all of them wait at that channel's pace. Instead:

- a message whose channel's share is full waits in memory, while the partition
  goes on, if the channel is expected to take it soon: if fewer of the
  channel's messages are ahead of it in this consumer than its share took in
  over the last few seconds (:meth:`InFlightLimits.may_wait`). That is a fast
  endpoint with a backlog, or any channel during its first seconds at full
  share, before its pace is known;
- otherwise it is deferred (an endpoint hanging until its deadline): the same
  command, same job id and attempt number, produced to the first retry tier
  (from a retry tier, to that tier again) due after the tier's delay, its
  input offset stored once the broker acknowledged it. The retry consumer
  brings it back when due; if the channel is still that slow it is deferred
  again, else it is attempted. Deferring is not an attempt, so a channel that
  hangs for good still ends its jobs dead after the configured attempts, which
  keep timing out;
- only when the process holds all it may (in flight and waiting together)
  does the consumer pause all its partitions, while ``consume`` keeps being
  called, to bound memory.

A deferral emits no job event: the recorder counts attempts from job events and
never moves a job backwards, and nothing happened to the job but a wait. The
job keeps its state (``queued``, or ``retrying`` with a ``next_attempt_at``
that may pass before the attempt runs). On the retry tiers a message that is
not yet due holds its partition (see :mod:`services.deliverer.pauses`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from services.deliverer.limits import InFlightLimits
from services.deliverer.lookup import DeliveredLookup
from services.deliverer.offsets import OffsetTracker, PartitionProgress
from services.deliverer.pauses import PartitionKey, RetryGate, Throttle
from services.deliverer.pipeline import Incoming, Pipeline
from services.deliverer.topology import TypeTopics
from switchboard.codec import Codec, CodecError
from switchboard.kafka import make_consumer
from switchboard.settings import Settings

log = logging.getLogger(__name__)

CONSUME_BATCH = 500
CONSUME_TIMEOUT_S = 0.1
AUTO_COMMIT_INTERVAL_MS = 1000


@dataclass(frozen=True)
class _Waiting:
    """A consumed message, already tracked, waiting for room to start."""

    item: Incoming
    progress: PartitionProgress
    delivered: bool
    served_type: str

    @property
    def channel(self) -> str | None:
        """The channel whose share the message needs; None if it is not sent.

        A message that will not be attempted (undecodable, for another type,
        already delivered) needs no share and is never deferred.
        """
        command = self.item.command
        if (
            command is None
            or self.delivered
            or str(command["channel_type"]) != self.served_type
        ):
            return None
        return str(command["channel_id"])

    @property
    def partition(self) -> PartitionKey:
        return (self.item.topic, self.item.partition)


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
        limits: InFlightLimits,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Prepare a consumer for ``topics`` (retry tiers if ``retry``).

        ``consumer_options`` override the Kafka consumer's configuration.
        """
        self._settings = settings
        self._topics = topics
        self._retry = retry
        self._pipeline = pipeline
        self._lookup = lookup
        self._codec = codec
        self._limits = limits
        self._consumer_options = dict(consumer_options or {})
        self._tracker = OffsetTracker()
        self._pending_lock = threading.Lock()
        self._pending_offsets: dict[PartitionKey, int] = {}
        self._revoked: set[PartitionKey] = set()
        self._waiting: list[_Waiting] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer: Consumer | None = None
        self._gate: RetryGate | None = None
        self._throttle: Throttle | None = None
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
                **self._consumer_options,
            },
        )
        self._consumer = consumer
        self._gate = RetryGate(consumer) if self._retry else None
        self._throttle = Throttle(consumer, self._gate)
        subscribed = self._topics.retry_topics if self._retry else [self._topics.main]
        consumer.subscribe(
            subscribed, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        log.info("consumer started", extra={"group": self.name, "topics": subscribed})
        try:
            await self._loop(loop, executor, stopping)
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
        stopping: asyncio.Event,
    ) -> None:
        while not stopping.is_set():
            self._start_waiting(stopping)
            self._pause_what_cannot_start()
            messages = await loop.run_in_executor(executor, self._store_and_consume)
            self._drop_revoked()
            if messages:
                await self._admit_batch(messages)
                self._start_waiting(stopping)

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

    def _pause_what_cannot_start(self) -> None:
        """Pause every partition while the process holds all it may, else none.

        Called every round, so partitions assigned meanwhile are paused too.
        """
        assigned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        # Only the process-wide bound pauses: a channel's overflow waits in
        # memory or is deferred, and never holds back its partition's others.
        wanted = assigned if self._limits.full() else set()
        self._throttle.hold_only(wanted)
        if self._gate is not None:
            self._gate.release_due(keep_paused=self._throttle.paused)

    async def _admit_batch(self, messages: list[Message]) -> None:
        items = [item for item in map(self._admit, messages) if item is not None]
        job_ids = [item.command["job_id"] for item in items if item.command]
        delivered = await self._lookup.delivered(job_ids)
        for item in items:
            # Tracked now, in offset order, so that no offset is stored past a
            # message still waiting while later ones of its partition finish.
            progress = self._tracker.begin(item.topic, item.partition, item.offset)
            is_delivered = bool(item.command) and item.command["job_id"] in delivered
            self._waiting.append(
                _Waiting(item, progress, is_delivered, self._topics.channel_type)
            )
            self._limits.add_waiting(self._waiting[-1].channel)

    def _start_waiting(self, stopping: asyncio.Event) -> None:
        """Start what the bound and shares allow; defer what would wait too long.

        In consumption order, so a channel's waiting messages start oldest
        first and each one's place in its channel's line is known. Once one of
        a channel's messages stays waiting, none after it can start in this
        round (starting only uses up room).
        """
        still: list[_Waiting] = []
        in_line: dict[str | None, int] = {}
        for waiting in self._waiting:
            channel = waiting.channel
            if channel not in in_line and self._limits.admits(channel):
                self._launch(waiting, channel, self._process(waiting, stopping))
                continue
            position = in_line.get(channel, 0) + 1
            room = self._limits.may_wait(channel)
            if room is not None and position > room and self._limits.admits(None):
                # A deferral holds no slot of the channel: it sends nothing.
                self._launch(waiting, None, self._defer(waiting, stopping))
                continue
            in_line[channel] = position
            still.append(waiting)
        self._waiting = still

    def _launch(
        self,
        waiting: _Waiting,
        channel: str | None,
        work: Coroutine[Any, Any, None],
    ) -> None:
        """Run ``work`` for ``waiting``, holding a slot of ``channel`` until done."""
        # Taken before the wait is counted off, so a channel with a line never
        # looks idle in between, which would restart the measure of its pace.
        self._limits.take(channel)
        self._limits.remove_waiting(waiting.channel)
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _task: self._limits.release(channel))

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

    async def _process(self, waiting: _Waiting, stopping: asyncio.Event) -> None:
        await self._settle(
            waiting,
            stopping,
            self._pipeline.handle(
                waiting.item, self._topics.channel_type, waiting.delivered
            ),
        )

    async def _defer(self, waiting: _Waiting, stopping: asyncio.Event) -> None:
        await self._settle(
            waiting,
            stopping,
            self._pipeline.defer(waiting.item, self._topics.channel_type),
        )

    async def _settle(
        self,
        waiting: _Waiting,
        stopping: asyncio.Event,
        outcome: Coroutine[Any, Any, None],
    ) -> None:
        """Await ``outcome`` durable, then store the offset; on failure, stop."""
        item = waiting.item
        try:
            await outcome
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
            self._store(waiting.progress, item.offset)

    def _store(self, progress: PartitionProgress, offset: int) -> None:
        next_offset = self._tracker.finish(progress, offset)
        if next_offset is not None:
            with self._pending_lock:
                self._pending_offsets[(progress.topic, progress.partition)] = (
                    next_offset
                )

    def _drop_revoked(self) -> None:
        """Forget waiting messages of partitions revoked during the last consume."""
        with self._pending_lock:
            revoked, self._revoked = self._revoked, set()
        if revoked:
            kept = []
            for waiting in self._waiting:
                if waiting.partition in revoked:
                    self._limits.remove_waiting(waiting.channel)
                else:
                    kept.append(waiting)
            self._waiting = kept

    async def _drain(self) -> None:
        # Waiting messages never started: their offsets were never stored, so
        # whoever consumes the partition next does them.
        for waiting in self._waiting:
            self._limits.remove_waiting(waiting.channel)
        self._waiting = []
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside consume: store what is durable so the commit on revoke
        # carries it, then forget the partitions. Their waiting messages are
        # dropped when consume returns; the next owner does them.
        self._flush_offsets()
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._tracker.forget(keys)
        with self._pending_lock:
            self._revoked.update(keys)
        if self._gate is not None:
            self._gate.forget(keys)
        if self._throttle is not None:
            self._throttle.forget(keys)
