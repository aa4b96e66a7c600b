"""The router's run loop: alert events in, delivery commands and job events out.

One Kafka transaction per polled batch carries everything the batch decided:
the commands to ``notify.delivery.<type>``, the ``queued``/``suppressed`` job
events to ``notify.jobs``, undecodable input to ``notify.router.dlq``, the
throttle changelog records and the input offsets. After a crash or an aborted
transaction the batch is read again from the committed offsets and decided again
with the committed throttle state, so each event yields its jobs exactly once
(job ids are derived from event, rule and channel, so they come out the same).

The loop decides and encodes batch N+1 while a second thread commits batch N,
so the CPU work overlaps the broker round trips of the transaction; a batch is
only produced once the one before it committed, and if that one aborted the
prepared batch is dropped with it and both are read again.

A commit that outlives the broker's transaction timeout can never succeed; the
router then abandons it and its producer (librdkafka can block in
send_offsets_to_transaction past any timeout after the broker came back under a
new connection), starts a producer with the same transactional id, which fences
the old one, and routes the batch again. The same happens when an abort itself
fails or the producer reports a fatal error: while the broker is away, the
router backs off and retries, and it exits only when another process with its
transactional id fenced it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from services.router import metrics
from services.router.batch import BatchTally, Output, PreparedBatch, next_offsets
from services.router.encoding import (
    AlertTooLarge,
    SplicedRecord,
    alert_body,
    fit_alert,
)
from services.router.matcher import Match, RuleIndex
from services.router.throttle import (
    FOLLOW_UP_KINDS,
    ChangelogReader,
    ThrottleState,
    encode_sent_at,
    throttle_key,
)
from switchboard.codec import Codec, CodecError, default_codec
from switchboard.config_cache import ConfigCache, RuleRecord
from switchboard.domain import JobState
from switchboard.jobs import job_event, new_command, utc_now
from switchboard.kafka import (
    TRANSACTION_TIMEOUT_MS,
    make_admin,
    make_consumer,
    make_transactional_producer,
)
from switchboard.settings import Settings
from switchboard.topics import (
    CONFIG_TOPIC,
    JOBS_TOPIC,
    ROUTER_DLQ_TOPIC,
    ROUTER_GROUP,
    THROTTLE_TOPIC,
    delivery_topic,
)

log = logging.getLogger(__name__)

REASON_HEADER = "switchboard-reason"
ERROR_CLASS_HEADER = "switchboard-error-class"
SOURCE_TOPIC_HEADER = "switchboard-source-topic"
SOURCE_PARTITION_HEADER = "switchboard-source-partition"
SOURCE_OFFSET_HEADER = "switchboard-source-offset"
ORIGINAL_BYTES_HEADER = "switchboard-original-bytes"
# A dead letter carries the original bytes unless they would exceed Kafka's
# default message limit; the original then stays readable on the input topic
# (the source headers say where) until its retention ends.
MAX_DEAD_LETTER_BYTES = 900 * 1024

TRANSACTION_TIMEOUT_S = 30.0
CONFIG_READY_TIMEOUT_S = 120.0
ABORT_BACKOFF_S = 0.1
MAX_ABORT_BACKOFF_S = 5.0
# Past the broker's transaction timeout a commit cannot succeed any more.
COMMIT_MARGIN_S = 5.0
# Another producer with this transactional id took over: routing on would
# only fence it back in turn.
FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED})


class RouterError(Exception):
    """Raised when the router cannot start or must stop."""


@dataclass(frozen=True)
class RouterTopics:
    """The topics a router reads and writes; defaults are the design's names."""

    alerts: str
    jobs: str = JOBS_TOPIC
    dlq: str = ROUTER_DLQ_TOPIC
    throttle: str = THROTTLE_TOPIC
    config: str = CONFIG_TOPIC
    delivery_prefix: str = delivery_topic("")

    def delivery(self, channel_type: str) -> str:
        """The delivery topic of one channel type."""
        return f"{self.delivery_prefix}{channel_type}"


@dataclass(frozen=True)
class RouterOptions:
    """How a router process identifies itself and sizes its transactions."""

    transactional_id: str
    group_id: str = ROUTER_GROUP
    batch_size: int = 500
    batch_timeout_s: float = 0.05
    expire_interval_s: float = 30.0
    producer_overrides: dict[str, Any] = field(default_factory=dict)


def epoch_ms(moment: Any) -> int:
    """Milliseconds since the epoch of a decoded timestamp."""
    return int(moment.timestamp() * 1000)


class Router:
    """Routes alert events to delivery jobs, one transaction per batch."""

    def __init__(
        self,
        settings: Settings,
        topics: RouterTopics,
        options: RouterOptions,
        codec: Codec | None = None,
    ) -> None:
        """Prepare a router; :meth:`run` connects and routes until stopped."""
        self._settings = settings
        self._topics = topics
        self._options = options
        self._codec = codec or default_codec()
        self._commands = SplicedRecord(self._codec, "DeliveryCommand")
        self._job_events = SplicedRecord(self._codec, "JobEvent")
        self._cache = ConfigCache(settings, self._codec, topic=topics.config)
        self._index = RuleIndex()
        self._rules: dict[str, RuleRecord] = {}
        self._throttle = ThrottleState()
        self._next_expiry = 0.0
        self._aborts_in_a_row = 0
        self._rewind_pending = False
        timeout_ms = options.producer_overrides.get(
            "transaction.timeout.ms", TRANSACTION_TIMEOUT_MS
        )
        self._commit_deadline_s = timeout_ms / 1000 + COMMIT_MARGIN_S
        self._in_flight: tuple[PreparedBatch, Future[None]] | None = None
        # Producers given up on while a thread was stuck in them; kept so that
        # garbage collection never blocks destroying one.
        self._abandoned: list[Producer] = []
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._reader: ChangelogReader | None = None
        self.ready = threading.Event()

    @property
    def config(self) -> ConfigCache:
        """The rules and channels cache the router routes with."""
        return self._cache

    @property
    def assigned(self) -> list[int]:
        """The alerts partitions this router currently owns."""
        return self._throttle.partitions()

    def run(self, stop: threading.Event) -> None:
        """Start up, then route batches until ``stop`` is set."""
        self._start()
        try:
            while not stop.is_set():
                try:
                    self._poll_once()
                except KafkaException as error:
                    self._recover(error)
            self._settle()
        finally:
            self._shutdown()

    def _start(self) -> None:
        self._cache.start()
        if not self._cache.wait_ready(CONFIG_READY_TIMEOUT_S):
            raise RouterError(f"config topic {self._topics.config} not read in time")
        self._refresh_index()
        self._reader = ChangelogReader(self._settings, self._topics.throttle)
        self._check_co_partitioning()
        self._producer = self._new_producer()
        self._consumer = make_consumer(self._settings, self._options.group_id)
        self._consumer.subscribe(
            [self._topics.alerts],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self.ready.set()
        metrics.READY.set(1)
        log.info(
            "router ready",
            extra={
                "topic": self._topics.alerts,
                "group": self._options.group_id,
                "rules": self._index.rule_count,
                "tenants": self._index.tenant_count,
            },
        )

    def _new_producer(self) -> Producer:
        return make_transactional_producer(
            self._settings,
            self._options.transactional_id,
            **self._options.producer_overrides,
        )

    def _check_co_partitioning(self) -> None:
        assert self._reader is not None
        metadata = make_admin(self._settings).list_topics(
            self._topics.alerts, timeout=30.0
        )
        alerts = metadata.topics.get(self._topics.alerts)
        if alerts is None or alerts.error is not None:
            raise RouterError(f"alerts topic {self._topics.alerts} does not exist")
        throttle_partitions = self._reader.partition_count()
        if throttle_partitions < len(alerts.partitions):
            raise RouterError(
                f"throttle topic {self._topics.throttle} has {throttle_partitions} "
                f"partitions; it needs as many as {self._topics.alerts} "
                f"({len(alerts.partitions)})"
            )

    def _shutdown(self) -> None:
        self.ready.clear()
        metrics.READY.set(0)
        # Each step on its own: a client left in an error state by an outage
        # must not hide, by raising here, the error that is ending the run.
        consumer, producer = self._consumer, self._producer
        if consumer is not None:
            _close_quietly("consumer", consumer.close)
        if producer is not None:
            _close_quietly("producer", lambda: producer.flush(10.0))
        if self._reader is not None:
            self._reader.close()
        self._cache.stop()
        log.info("router stopped", extra={"topic": self._topics.alerts})

    # Rebalancing: windows are restored before any message of a partition is routed.

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assert self._reader is not None
        for partition in partitions:
            self._throttle.load(
                partition.partition, self._reader.read(partition.partition)
            )
        metrics.THROTTLE_WINDOWS.set(self._throttle.size())
        log.info(
            "partitions assigned",
            extra={"topic": self._topics.alerts, "partitions": _numbers(partitions)},
        )

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The batch being committed may hold offsets of these partitions: let
        # it finish before they go, so the next owner starts where it ended.
        # Its outcome is handled by the batch loop once the poll returns.
        if self._in_flight is not None:
            wait([self._in_flight[1]], timeout=self._commit_deadline_s)
        for partition in partitions:
            self._throttle.drop(partition.partition)
        log.info(
            "partitions revoked",
            extra={"topic": self._topics.alerts, "partitions": _numbers(partitions)},
        )

    # The batch loop.

    def _poll_once(self) -> None:
        """Prepare the next batch while the previous one commits, then send it."""
        assert self._consumer is not None
        if self._rewind_pending:
            self._rewind()
            self._rewind_pending = False
        messages = self._consumer.consume(
            self._options.batch_size, timeout=self._options.batch_timeout_s
        )
        routable = [message for message in messages if _usable(message)]
        if not routable:
            self._settle()
            return
        batch = self._prepare(routable)
        if self._settle():
            self._submit(batch)

    def _prepare(self, messages: list[Message]) -> PreparedBatch:
        """Decide and encode everything a batch produces (no Kafka calls)."""
        self._refresh_index()
        self._throttle.begin_batch()
        batch = PreparedBatch(messages, started=time.monotonic())
        created_at = utc_now()
        for message in messages:
            self._route(message, batch, created_at)
        if time.monotonic() >= self._next_expiry:
            self._throttle.expire(self._window_minutes)
            self._next_expiry = time.monotonic() + self._options.expire_interval_s
        for partition, key, sent_at in self._throttle.batch_changes():
            value = encode_sent_at(sent_at) if sent_at is not None else None
            batch.add(self._topics.throttle, key, value, partition=partition)
        return batch

    def _submit(self, batch: PreparedBatch) -> None:
        """Produce a prepared batch in a new transaction and start committing it."""
        assert self._consumer is not None
        try:
            if self._producer is None:
                self._producer = self._new_producer()
            self._producer.begin_transaction()
            for output in batch.outputs:
                self._produce(output)
        except KafkaException as error:
            self._abort(error, batch)
            return
        offsets = next_offsets(batch.messages)
        group = self._consumer.consumer_group_metadata()
        self._in_flight = (batch, self._commit_in_background(offsets, group))

    def _commit_in_background(
        self, offsets: list[TopicPartition], group: Any
    ) -> Future[None]:
        """Add the input offsets to the transaction and commit it, on a thread.

        A daemon thread per batch rather than a pool: a thread stuck inside
        librdkafka must not keep the process from exiting.
        """
        assert self._producer is not None
        producer = self._producer
        future: Future[None] = Future()

        def finish() -> None:
            try:
                producer.send_offsets_to_transaction(
                    offsets, group, TRANSACTION_TIMEOUT_S
                )
                _commit(producer)
            except BaseException as error:  # handed to the batch loop
                future.set_exception(error)
            else:
                future.set_result(None)

        threading.Thread(target=finish, name="router-commit", daemon=True).start()
        return future

    def _settle(self) -> bool:
        """Wait for the batch being committed; False if it aborted (input rewound)."""
        if self._in_flight is None:
            return True
        batch, future = self._in_flight
        self._in_flight = None
        try:
            future.result(timeout=self._commit_deadline_s)
        except FutureTimeout:
            self._replace_stuck_producer()
            return False
        except KafkaException as error:
            self._abort(error, batch)
            return False
        self._throttle.commit()
        self._aborts_in_a_row = 0
        self._record(batch)
        return True

    def _route(self, message: Message, batch: PreparedBatch, created_at: Any) -> None:
        tally = batch.tally
        tally.events += 1
        try:
            alert = self._decode(message)
        except CodecError as error:
            self._dead_letter(message, error, batch)
            tally.dead_lettered[type(error).__name__] += 1
            return
        matches = self._index.matches(alert)
        if not matches:
            return
        tally.matched += 1
        if not self._throttle.has(message.partition()):
            assert self._reader is not None
            self._throttle.load(
                message.partition(), self._reader.read(message.partition())
            )
        body = alert_body(self._codec, message.value(), alert)
        try:
            alert, body = self._fitted(message, alert, body)
        except AlertTooLarge as error:
            self._dead_letter(message, error, batch)
            tally.dead_lettered[type(error).__name__] += 1
            return
        for match in matches:
            self._emit(message.partition(), alert, body, match, batch, created_at)

    def _fitted(
        self, message: Message, alert: dict[str, Any], body: bytes
    ) -> tuple[dict[str, Any], bytes]:
        """The alert cut to fit a Kafka record, with a warning when it was cut."""
        fitted, fitted_body = fit_alert(self._codec, alert, body)
        if fitted is not alert:
            # Rare and worth an operator's eye: upstream sent an alert too big
            # to deliver whole.
            log.warning(
                "alert cut to fit a delivery command",
                extra={
                    "tenant": alert["tenant_id"],
                    "alert_id": alert["alert_id"][:200],
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "bytes": len(body),
                    "kept_bytes": len(fitted_body),
                },
            )
        return fitted, fitted_body

    def _decode(self, message: Message) -> dict[str, Any]:
        value = message.value()
        if value is None:
            raise CodecError("message has no value")
        return self._codec.decode("AlertEvent", value)

    def _emit(
        self,
        partition: int,
        alert: dict[str, Any],
        body: bytes,
        match: Match,
        batch: PreparedBatch,
        created_at: Any,
    ) -> None:
        command = new_command(
            alert,
            match.channel_id,
            match.channel_type,
            match.rule_id,
            created_at=created_at,
        )
        tally = batch.tally
        if self._allowed(partition, alert, match):
            batch.add(
                self._topics.delivery(match.channel_type),
                match.channel_id,
                self._commands.encode(command, body),
            )
            event = job_event(command, JobState.QUEUED, 1, occurred_at=created_at)
            tally.jobs[match.channel_type] += 1
        else:
            event = job_event(
                command,
                JobState.SUPPRESSED,
                0,
                occurred_at=created_at,
                reason="throttled",
            )
            tally.suppressed[match.channel_type] += 1
        batch.add(
            self._topics.jobs, command["job_id"], self._job_events.encode(event, body)
        )

    def _allowed(self, partition: int, alert: dict[str, Any], match: Match) -> bool:
        """Whether a match is sent (True) or suppressed by its throttle window."""
        if match.throttle_minutes <= 0:
            return True
        tenant_id, alert_id = alert["tenant_id"], alert["alert_id"]
        key = throttle_key(match.rule_id, alert["kind"], tenant_id, alert_id)
        opened_key = None
        if alert["kind"] in FOLLOW_UP_KINDS:
            opened_key = throttle_key(match.rule_id, "OPEN", tenant_id, alert_id)
        event_ms = epoch_ms(alert["occurred_at"])
        return self._throttle.should_send(
            partition, key, match.throttle_minutes, event_ms, opened_key
        )

    def _dead_letter(
        self,
        message: Message,
        error: CodecError | AlertTooLarge,
        batch: PreparedBatch,
    ) -> None:
        value = message.value()
        headers = list(message.headers() or [])
        headers += [
            (REASON_HEADER, str(error).encode("utf-8")),
            (ERROR_CLASS_HEADER, type(error).__name__.encode("utf-8")),
            (SOURCE_TOPIC_HEADER, message.topic().encode("utf-8")),
            (SOURCE_PARTITION_HEADER, str(message.partition()).encode("ascii")),
            (SOURCE_OFFSET_HEADER, str(message.offset()).encode("ascii")),
        ]
        if value is not None and len(value) > MAX_DEAD_LETTER_BYTES:
            headers.append((ORIGINAL_BYTES_HEADER, str(len(value)).encode("ascii")))
            value = None
        batch.add(self._topics.dlq, message.key(), value, headers=headers)
        # Debug per message: a flood of bad input must not flood the log; the
        # batch logs one warning with the count once its transaction committed.
        log.debug(
            "undecodable alert event dead-lettered",
            extra={
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
                "error": str(error),
            },
        )

    def _produce(self, output: Output) -> None:
        assert self._producer is not None
        topic, key, value, extra = output
        while True:
            try:
                self._producer.produce(topic, value, key, **extra)
                return
            except BufferError:
                # The local queue is full: let deliveries drain, then go on.
                self._producer.poll(0.05)

    def _abort(self, error: KafkaException, batch: PreparedBatch) -> None:
        """Abort the open transaction, wait a little, and route the batch again.

        Anything but being fenced is survivable: a failed delivery, a topic that
        does not exist yet, a rebalance that fenced the offsets, a broker that
        went away. The batch's output is discarded with the transaction (or with
        the producer, when even the abort fails) and its input is read again
        from the committed offsets.
        """
        kafka_error: KafkaError = error.args[0]
        self._stop_if_fenced(kafka_error)
        self._aborts_in_a_row += 1
        log.warning(
            "router transaction aborted",
            extra={
                "error": kafka_error.str(),
                "code": kafka_error.name(),
                "attempt": self._aborts_in_a_row,
                "offsets": _offset_ranges(batch.messages),
            },
        )
        if kafka_error.fatal():
            self._drop_producer()
        elif self._producer is not None:
            try:
                self._producer.abort_transaction(TRANSACTION_TIMEOUT_S)
            except KafkaException as abort_error:
                log.warning(
                    "router transaction not aborted; replacing the producer",
                    extra={"error": abort_error.args[0].str()},
                )
                self._drop_producer()
        self._throttle.rollback()
        metrics.TRANSACTIONS_ABORTED.inc()
        self._rewind_pending = True
        self._back_off()

    def _recover(self, error: KafkaException) -> None:
        """Start over from the committed offsets after a Kafka call failed.

        Reached when the broker is away outside a transaction's own steps: a
        new producer that cannot initialise, offsets that cannot be read for a
        rewind, a throttle partition that cannot be restored.
        """
        kafka_error: KafkaError = error.args[0]
        self._stop_if_fenced(kafka_error)
        self._settle()
        self._aborts_in_a_row += 1
        log.warning(
            "router waiting for kafka",
            extra={
                "error": kafka_error.str(),
                "code": kafka_error.name(),
                "attempt": self._aborts_in_a_row,
            },
        )
        if kafka_error.fatal():
            self._drop_producer()
        self._throttle.rollback()
        self._rewind_pending = True
        self._back_off()

    def _stop_if_fenced(self, kafka_error: KafkaError) -> None:
        """Exit when another router took over this transactional id."""
        if kafka_error.code() not in FENCED_CODES:
            return
        log.error(
            "router fenced by another process with its transactional id",
            extra={
                "transactional_id": self._options.transactional_id,
                "error": kafka_error.str(),
            },
        )
        raise RouterError(
            f"fenced: another router uses transactional id "
            f"{self._options.transactional_id}; give each instance its own"
        )

    def _drop_producer(self) -> None:
        """Give up the current producer; the next batch starts a new one.

        The new producer's ``init_transactions`` fences the old one and makes
        the broker abort its open transaction, so nothing of the batch becomes
        visible twice.
        """
        if self._producer is not None:
            self._abandoned.append(self._producer)
        self._producer = None

    def _replace_stuck_producer(self) -> None:
        """Give up a commit that can no longer succeed and route its batch again."""
        log.warning(
            "router transaction stuck; replacing the producer",
            extra={"duration_ms": int(self._commit_deadline_s * 1000)},
        )
        metrics.TRANSACTIONS_ABORTED.inc()
        self._drop_producer()
        self._throttle.rollback()
        self._rewind_pending = True

    def _back_off(self) -> None:
        """Hold the input for a growing delay while staying in the group."""
        assert self._consumer is not None
        delay_s = min(
            MAX_ABORT_BACKOFF_S, ABORT_BACKOFF_S * 2 ** (self._aborts_in_a_row - 1)
        )
        deadline = time.monotonic() + delay_s
        while time.monotonic() < deadline:
            # Serves group callbacks; whatever it returns is read again after
            # the rewind that follows.
            self._consumer.consume(self._options.batch_size, timeout=0.1)

    def _rewind(self) -> None:
        """Go back to the committed offsets so the aborted batch is routed again."""
        assert self._consumer is not None
        assignment = self._consumer.assignment()
        if not assignment:
            return
        committed = self._consumer.committed(assignment, timeout=TRANSACTION_TIMEOUT_S)
        for partition in committed:
            offset = partition.offset if partition.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(
                TopicPartition(partition.topic, partition.partition, offset)
            )

    def _refresh_index(self) -> None:
        if self._cache.version == self._index.version:
            return
        version, channels, rules = self._cache.snapshot()
        rebuilt = self._index.update(version, channels, rules)
        self._rules = rules
        metrics.RULES_INDEXED.set(self._index.rule_count)
        log.debug(
            "rule index updated",
            extra={
                "version": version,
                "tenants_rebuilt": rebuilt,
                "rules": self._index.rule_count,
            },
        )

    def _window_minutes(self, rule_id: str) -> int | None:
        rule = self._rules.get(rule_id)
        return rule.throttle_minutes if rule is not None else None

    def _record(self, batch: PreparedBatch) -> None:
        tally, messages = batch.tally, batch.messages
        seconds = time.monotonic() - batch.started
        metrics.EVENTS_CONSUMED.inc(tally.events)
        metrics.EVENTS_MATCHED.inc(tally.matched)
        for channel_type, count in tally.jobs.items():
            metrics.JOBS_EMITTED.labels(channel_type).inc(count)
        for channel_type, count in tally.suppressed.items():
            metrics.JOBS_SUPPRESSED.labels(channel_type).inc(count)
        for reason, count in tally.dead_lettered.items():
            metrics.DEAD_LETTERED.labels(reason).inc(count)
        metrics.BATCH_SECONDS.observe(seconds)
        metrics.BATCH_EVENTS.observe(len(messages))
        metrics.THROTTLE_WINDOWS.set(self._throttle.size())
        self._log_batch(tally, messages, seconds)

    def _log_batch(
        self, tally: BatchTally, messages: list[Message], seconds: float
    ) -> None:
        if tally.dead_lettered:
            log.warning(
                "undecodable alert events dead-lettered",
                extra={
                    "topic": self._topics.dlq,
                    "count": sum(tally.dead_lettered.values()),
                    "reasons": dict(tally.dead_lettered),
                },
            )
        log.debug(
            "batch routed",
            extra={
                "events": tally.events,
                "matched": tally.matched,
                "jobs": sum(tally.jobs.values()),
                "suppressed": sum(tally.suppressed.values()),
                "dead_lettered": sum(tally.dead_lettered.values()),
                "partitions": sorted({m.partition() for m in messages}),
                "duration_ms": int(seconds * 1000),
            },
        )


def _commit(producer: Producer) -> None:
    """Commit the open transaction, retrying what librdkafka calls retriable."""
    while True:
        try:
            producer.commit_transaction(TRANSACTION_TIMEOUT_S)
            return
        except KafkaException as error:
            if not error.args[0].retriable():
                raise


def _usable(message: Message) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning(
            "alerts topic read error",
            extra={"topic": message.topic(), "error": error.str()},
        )
    return False


def _close_quietly(name: str, close: Any) -> None:
    """Run one client's closing call, logging instead of raising a Kafka error."""
    try:
        close()
    except KafkaException as error:
        log.warning(
            "kafka client not closed cleanly",
            extra={"client": name, "error": error.args[0].str()},
        )


def _offset_ranges(messages: list[Message]) -> dict[int, str]:
    """``{partition: "first-last"}`` of a batch, to find its input in a log line."""
    ranges: dict[int, tuple[int, int]] = {}
    for message in messages:
        first, last = ranges.get(message.partition(), (message.offset(),) * 2)
        ranges[message.partition()] = (
            min(first, message.offset()),
            max(last, message.offset()),
        )
    return {p: f"{first}-{last}" for p, (first, last) in sorted(ranges.items())}


def _numbers(partitions: list[TopicPartition]) -> list[int]:
    return sorted(partition.partition for partition in partitions)
