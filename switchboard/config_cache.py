"""An in-memory copy of every channel and rule, kept current from ``notify.config``.

Routers and deliverers start a :class:`ConfigCache`, wait until it has read the
compacted topic up to the end it had at start-up (``wait_ready``), and then read
:meth:`ConfigCache.snapshot` whenever :attr:`ConfigCache.version` has moved. A
background thread applies changes as they are published; secrets stay
encrypted here and are decrypted by whoever needs them, in memory only.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from switchboard.codec import Codec, CodecError, default_codec
from switchboard.kafka import client_logging
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC

log = logging.getLogger(__name__)

CHANNEL_KEY_PREFIX = "channel:"
RULE_KEY_PREFIX = "rule:"
POLL_TIMEOUT_S = 0.2
POLL_BATCH = 500


@dataclass(frozen=True)
class ChannelRecord:
    """A channel as published on notify.config (secrets still encrypted)."""

    id: str
    tenant_id: str
    name: str
    channel_type: str
    enabled: bool
    config_json: str
    secrets_encrypted: str | None


@dataclass(frozen=True)
class RuleRecord:
    """A routing rule as published on notify.config."""

    id: str
    tenant_id: str
    channel_id: str
    name: str
    priority: int
    site_ids: tuple[str, ...] = ()
    device_prefixes: tuple[str, ...] = ()
    alert_types: tuple[str, ...] = ()
    min_severity: str | None = None
    deliver_on: tuple[str, ...] = ()
    throttle_minutes: int = 0
    stop_on_match: bool = False
    enabled: bool = True


class ConfigTopicMissing(RuntimeError):
    """Raised when the configuration topic does not exist on the broker."""


def channel_key(channel_id: str) -> str:
    """The notify.config key of a channel."""
    return f"{CHANNEL_KEY_PREFIX}{channel_id}"


def rule_key(rule_id: str) -> str:
    """The notify.config key of a rule."""
    return f"{RULE_KEY_PREFIX}{rule_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def encode_channel_event(codec: Codec, channel: ChannelRecord, outbox_id: int) -> bytes:
    """The ConfigEvent value that publishes ``channel``."""
    return codec.encode(
        "ConfigEvent",
        {
            "outbox_id": outbox_id,
            "changed_at": _now(),
            "channel": channel.__dict__,
            "rule": None,
        },
    )


def encode_rule_event(codec: Codec, rule: RuleRecord, outbox_id: int) -> bytes:
    """The ConfigEvent value that publishes ``rule``."""
    value: dict[str, Any] = dict(rule.__dict__)
    for field in ("site_ids", "device_prefixes", "alert_types", "deliver_on"):
        value[field] = list(value[field])
    return codec.encode(
        "ConfigEvent",
        {"outbox_id": outbox_id, "changed_at": _now(), "channel": None, "rule": value},
    )


def _rule_from_avro(value: dict[str, Any]) -> RuleRecord:
    return RuleRecord(
        id=value["id"],
        tenant_id=value["tenant_id"],
        channel_id=value["channel_id"],
        name=value["name"],
        priority=value["priority"],
        site_ids=tuple(value["site_ids"]),
        device_prefixes=tuple(value["device_prefixes"]),
        alert_types=tuple(value["alert_types"]),
        min_severity=value["min_severity"],
        deliver_on=tuple(value["deliver_on"]),
        throttle_minutes=value["throttle_minutes"],
        stop_on_match=value["stop_on_match"],
        enabled=value["enabled"],
    )


class ConfigCache:
    """Channels and rules of every tenant, read from notify.config."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec | None = None,
        topic: str = CONFIG_TOPIC,
    ) -> None:
        """Prepare the cache; :meth:`start` begins reading."""
        self._settings = settings
        self._codec = codec or default_codec()
        self._topic = topic
        self._lock = threading.Lock()
        self._channels: dict[str, ChannelRecord] = {}
        self._rules: dict[str, RuleRecord] = {}
        self._version = 0
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def version(self) -> int:
        """Increases with every applied batch of changes."""
        return self._version

    @property
    def ready(self) -> bool:
        """Whether the cache has caught up with the topic as it was at start-up."""
        return self._ready.is_set()

    def start(self) -> None:
        """Start the background reader thread."""
        self._thread = threading.Thread(
            target=self._run, name="config-cache", daemon=True
        )
        self._thread.start()

    def wait_ready(self, timeout_s: float = 60.0) -> bool:
        """Block until caught up (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if self._failure is not None:
                raise RuntimeError("config cache reader failed") from self._failure
            if time.monotonic() > deadline:
                return False
        return True

    def stop(self) -> None:
        """Stop the reader thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def channel(self, channel_id: str) -> ChannelRecord | None:
        """The current state of one channel, or None if deleted or unknown."""
        return self._channels.get(channel_id)

    def snapshot(self) -> tuple[int, dict[str, ChannelRecord], dict[str, RuleRecord]]:
        """A consistent copy of (version, channels by id, rules by id)."""
        with self._lock:
            return self._version, dict(self._channels), dict(self._rules)

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._settings.kafka_bootstrap,
                # A group id is required by the client; nothing is ever committed.
                "group.id": f"switchboard.config-cache.{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "isolation.level": "read_committed",
                **client_logging(),
            }
        )
        try:
            self._consume(consumer)
        except (KafkaException, ConfigTopicMissing) as error:
            # Expected when Kafka is away or not set up: the caller of
            # wait_ready reports it in one line, so no traceback here.
            self._failure = error
            log.error(
                "config cache reader stopped",
                extra={"topic": self._topic, "error": str(error)},
            )
        except BaseException as error:
            self._failure = error
            log.exception("config cache reader stopped", extra={"topic": self._topic})
        finally:
            consumer.close()

    def _consume(self, consumer: Consumer) -> None:
        metadata = consumer.list_topics(self._topic, timeout=30.0)
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            raise ConfigTopicMissing(
                f"topic {self._topic} does not exist; run `switchboard topics create`"
            )
        partitions = sorted(topic.partitions)
        consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions]
        )
        targets = {
            p: consumer.get_watermark_offsets(
                TopicPartition(self._topic, p), timeout=30.0
            )[1]
            for p in partitions
        }
        positions = dict.fromkeys(partitions, 0)
        self._check_ready(positions, targets)

        while not self._stopping.is_set():
            messages = consumer.consume(POLL_BATCH, timeout=POLL_TIMEOUT_S)
            changes = []
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning(
                            "config topic read error", extra={"error": str(error)}
                        )
                    continue
                positions[message.partition()] = message.offset() + 1
                changes.append(message)
            if changes:
                self._apply(changes)
            if not self._ready.is_set():
                # With transactions, markers occupy offsets: use the position.
                for p in partitions:
                    position = consumer.position([TopicPartition(self._topic, p)])[0]
                    if position.offset >= 0:
                        positions[p] = max(positions[p], position.offset)
                self._check_ready(positions, targets)

    def _check_ready(self, positions: dict[int, int], targets: dict[int, int]) -> None:
        if all(positions[p] >= targets[p] for p in targets):
            if not self._ready.is_set():
                log.info(
                    "config cache ready",
                    extra={"channels": len(self._channels), "rules": len(self._rules)},
                )
            self._ready.set()

    def _apply(self, messages: list[Any]) -> None:
        with self._lock:
            for message in messages:
                key = (message.key() or b"").decode("utf-8", errors="replace")
                value = message.value()
                try:
                    self._apply_one(key, value)
                except CodecError as error:
                    log.error(
                        "undecodable config event skipped",
                        extra={
                            "key": key,
                            "partition": message.partition(),
                            "offset": message.offset(),
                            "error": str(error),
                        },
                    )
            self._version += 1

    def _apply_one(self, key: str, value: bytes | None) -> None:
        if key.startswith(CHANNEL_KEY_PREFIX):
            channel_id = key[len(CHANNEL_KEY_PREFIX) :]
            if value is None:
                self._channels.pop(channel_id, None)
                return
            event = self._codec.decode("ConfigEvent", value)
            if event["channel"] is not None:
                self._channels[channel_id] = ChannelRecord(**event["channel"])
        elif key.startswith(RULE_KEY_PREFIX):
            rule_id = key[len(RULE_KEY_PREFIX) :]
            if value is None:
                self._rules.pop(rule_id, None)
                return
            event = self._codec.decode("ConfigEvent", value)
            if event["rule"] is not None:
                self._rules[rule_id] = _rule_from_avro(event["rule"])
        else:
            log.warning("config event with unknown key skipped", extra={"key": key})
