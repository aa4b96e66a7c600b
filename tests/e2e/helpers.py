"""Helpers of the end-to-end tests: alerts, waiting, and reading topics back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from services.demo.scenario import utc_now
from switchboard.codec import Codec
from switchboard.settings import Settings

WAIT_S = 60.0
POLL_S = 0.2


def alert(tenant_id: str, alert_id: str, kind: str = "OPEN", **fields: Any) -> dict:
    """An AlertEvent of ``tenant_id`` happening now."""
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": alert_id,
        "kind": kind,
        "severity": fields.pop("severity", "HIGH"),
        "alert_type": fields.pop("alert_type", "link_down"),
        "site_id": fields.pop("site_id", "ams-1"),
        "device_id": fields.pop("device_id", f"core-{alert_id}"),
        "summary": fields.pop("summary", f"Link down on {alert_id}"),
        "details": None,
        "labels": {},
        "occurred_at": utc_now(),
        "source": "e2e",
        **fields,
    }


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout_s: float = WAIT_S,
    describe: Callable[[], object] | None = None,
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout_s``.

    ``describe`` adds what is known at that point to the failure message.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            detail = f": {describe()}" if describe else ""
            raise AssertionError(f"gave up waiting for {what}{detail}")
        time.sleep(POLL_S)


def read_since(
    settings: Settings,
    topic: str,
    since_ms: int,
    codec: Codec,
    schema: str,
    keep: Callable[[dict], bool],
    timeout_s: float = 15.0,
) -> list[tuple[dict, dict[str, bytes]]]:
    """Decoded records of ``topic`` from ``since_ms`` on that ``keep`` accepts.

    Reads committed records only, up to the partitions' ends at the time of
    the call, with their headers.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"e2e-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        return _read(consumer, topic, since_ms, codec, schema, keep, timeout_s)
    finally:
        consumer.close()


def _read(
    consumer: Consumer,
    topic: str,
    since_ms: int,
    codec: Codec,
    schema: str,
    keep: Callable[[dict], bool],
    timeout_s: float,
) -> list[tuple[dict, dict[str, bytes]]]:
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    wanted = [TopicPartition(topic, p, since_ms) for p in partitions]
    starts = consumer.offsets_for_times(wanted, timeout=10)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in partitions
    }
    live = [tp for tp in starts if tp.offset >= 0 and tp.offset < ends[tp.partition]]
    consumer.assign(live)
    remaining = {tp.partition for tp in live}
    found: list[tuple[dict, dict[str, bytes]]] = []
    deadline = time.monotonic() + timeout_s
    while remaining and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        if message.offset() + 1 >= ends[message.partition()]:
            remaining.discard(message.partition())
        record = codec.decode(schema, message.value())
        if keep(record):
            found.append((record, dict(message.headers() or [])))
    return found
