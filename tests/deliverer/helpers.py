"""Builders and an in-process deliverer harness for the deliverer's tests."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.webhook.config import Config, Secrets
from services.deliverer.ladder import Tier
from services.deliverer.service import Deliverer
from services.deliverer.topology import TypeTopics
from switchboard.codec import Codec, CodecError
from switchboard.config_cache import ChannelRecord, channel_key, encode_channel_event
from switchboard.jobs import new_command
from switchboard.kafka import make_admin, make_producer
from switchboard.secrets import SecretBox
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC

SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_alert(tenant_id: str, **fields: Any) -> dict[str, Any]:
    """An AlertEvent as the codec decodes it."""
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": f"alert-{uuid.uuid4().hex[:8]}",
        "kind": "OPEN",
        "severity": "CRITICAL",
        "alert_type": "link_down",
        "site_id": "site-1",
        "device_id": "router-7",
        "summary": "Link down on router-7",
        "details": "ge-0/0/1 lost carrier",
        "labels": {"region": "eu-west"},
        "occurred_at": datetime(2026, 12, 3, 19, 0, 0, tzinfo=UTC),
        "source": "netmon",
    }
    alert.update(fields)
    return alert


def make_command(tenant_id: str, channel_id: str, **alert_fields: Any) -> dict:
    """A first-attempt webhook DeliveryCommand for a new alert."""
    return new_command(
        make_alert(tenant_id, **alert_fields), channel_id, "webhook", str(uuid.uuid4())
    )


def resolved_webhook(url: str, secret: str | None = SIGNING_SECRET, **config: Any):
    """A ResolvedChannel for the webhook sender, as the resolver builds it."""
    return ResolvedChannel(
        id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        name="test webhook",
        channel_type="webhook",
        enabled=True,
        config=Config(url=url, **config),
        secrets=Secrets(signing_secret=secret),
    )


def publish_webhook_channel(
    settings: Settings,
    codec: Codec,
    tenant_id: str,
    url: str,
    *,
    channel_id: str | None = None,
    enabled: bool = True,
    secrets: dict | None = None,
    channel_type: str = "webhook",
    **config: Any,
) -> str:
    """Publish a channel's ConfigEvent to notify.config; returns its id."""
    channel_id = channel_id or str(uuid.uuid4())
    box = SecretBox.from_settings(settings)
    record = ChannelRecord(
        id=channel_id,
        tenant_id=tenant_id,
        name=f"webhook {channel_id[:8]}",
        channel_type=channel_type,
        enabled=enabled,
        config_json=json.dumps({"url": url, **config}),
        secrets_encrypted=box.encrypt(
            {"signing_secret": SIGNING_SECRET} if secrets is None else secrets
        ),
    )
    producer = make_producer(settings)
    producer.produce(
        CONFIG_TOPIC, encode_channel_event(codec, record, 0), channel_key(channel_id)
    )
    assert producer.flush(30) == 0
    return channel_id


def delete_channel(settings: Settings, channel_id: str) -> None:
    """Publish a channel's tombstone."""
    producer = make_producer(settings)
    producer.produce(CONFIG_TOPIC, None, channel_key(channel_id))
    assert producer.flush(30) == 0


def produce_commands(
    settings: Settings, codec: Codec, topic: str, commands: list[dict]
) -> None:
    """Produce DeliveryCommands keyed by channel id and wait for the acks."""
    producer = make_producer(settings)
    for command in commands:
        value = codec.encode("DeliveryCommand", command)
        producer.produce(topic, value, command["channel_id"])
    assert producer.flush(30) == 0


class TopicReader:
    """Reads a topic from its beginning, keeping every message seen."""

    def __init__(self, settings: Settings, topic: str, from_end: bool = False) -> None:
        """Assign every partition of ``topic`` from offset 0 (or from its end)."""
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"test.reader.{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        metadata = self._consumer.list_topics(topic, timeout=30)
        starts = {p: OFFSET_BEGINNING for p in metadata.topics[topic].partitions}
        if from_end:
            for p in starts:
                tp = TopicPartition(topic, p)
                starts[p] = self._consumer.get_watermark_offsets(tp, timeout=30)[1]
        self._consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
        self.messages: list[Any] = []

    def wait_until(
        self, done: Callable[[list[Any]], bool], timeout_s: float = 60.0
    ) -> list[Any]:
        """Read until ``done(messages)`` holds; return the messages."""
        deadline = time.monotonic() + timeout_s
        while not done(self.messages):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"condition not met after {len(self.messages)} messages"
                )
            for message in self._consumer.consume(500, timeout=0.2):
                if message.error() is None:
                    self.messages.append(message)
        return self.messages

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()


class JobEvents:
    """The job events of a jobs topic, decoded, filtered to some jobs."""

    def __init__(
        self, settings: Settings, codec: Codec, topic: str, from_end: bool = False
    ) -> None:
        """Read ``topic`` from the beginning (or from its current end)."""
        self._reader = TopicReader(settings, topic, from_end)
        self._codec = codec

    def wait(
        self, done: Callable[[list[dict]], bool], timeout_s: float = 60.0
    ) -> list[dict]:
        """Wait until ``done(events)`` holds."""
        messages = self._reader.wait_until(
            lambda messages: done(self._decode(messages)), timeout_s
        )
        return self._decode(messages)

    def for_jobs(self, job_ids: set[str], events: list[dict]) -> list[dict]:
        """The events of ``job_ids`` only."""
        return [event for event in events if event["job_id"] in job_ids]

    def _decode(self, messages: list[Any]) -> list[dict]:
        # A shared jobs topic may carry other engineers' experiments; skip what
        # is not a JobEvent.
        events = []
        for message in messages:
            try:
                events.append(self._codec.decode("JobEvent", message.value() or b""))
            except CodecError:
                continue
        return events

    def close(self) -> None:
        """Close the reader."""
        self._reader.close()


def states_of(events: list[dict], job_id: str) -> list[tuple[str, int]]:
    """(state, attempt) of a job's events in order."""
    return [(str(e["state"]), e["attempt"]) for e in events if e["job_id"] == job_id]


class DelivererHarness:
    """A webhook deliverer in a background thread over private topics."""

    def __init__(
        self,
        settings: Settings,
        make_topic: Callable[..., str],
        unique: str,
        retry_delays: str = "1s,2s",
        max_attempts: int = 6,
        partitions: int = 2,
        **deliverer_options: Any,
    ) -> None:
        """Create the private topics; :meth:`start` runs the deliverer."""
        self.settings = settings.model_copy(
            update={
                "retry_delays": retry_delays,
                "max_attempts": max_attempts,
                "allow_private_targets": True,
            }
        )
        tiers = tuple(
            Tier(label, delay_ms, make_topic(f"retry-{label}", partitions))
            for label, delay_ms in self.settings.retry_tiers
        )
        self.topics = TypeTopics(
            channel_type="webhook",
            main=make_topic("delivery", partitions),
            tiers=tiers,
            dlq=make_topic("dlq", partitions),
            group=f"test.deliverer.{unique}",
            retry_group=f"test.deliverer.{unique}.retry",
        )
        self.jobs_topic = make_topic("jobs", partitions)
        _wait_until_listed(self.settings, [self.jobs_topic, *self.topics.all_topics])
        self._options = deliverer_options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def start(self) -> DelivererHarness:
        """Run the deliverer until :meth:`stop`."""
        ready = threading.Event()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            ready.set()
            deliverer = Deliverer(
                self.settings,
                ["webhook"],
                topics={"webhook": self.topics},
                jobs_topic=self.jobs_topic,
                **self._options,
            )
            try:
                await deliverer.run(self._stopping)
            except BaseException as error:
                self.failure = error
                raise

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop the deliverer and wait for it (it may have stopped on its own)."""
        loop = self._loop
        if loop is not None and self._stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=90)


def _wait_until_listed(
    settings: Settings, topics: list[str], timeout_s: float = 30.0
) -> None:
    """Wait until the broker's metadata lists ``topics`` with their partitions.

    A topic just created can be missing from metadata for a moment on a busy
    broker, and the deliverer refuses to start without its topics.
    """
    admin = make_admin(settings)
    deadline = time.monotonic() + timeout_s
    while True:
        listed = admin.list_topics(timeout=10).topics
        missing = [t for t in topics if t not in listed or not listed[t].partitions]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not listed after creation: {missing}")
        time.sleep(0.1)
