"""The broker killed (SIGKILL) and started again under a running router.

The router must resume routing by itself, exactly once, and still stop on
SIGTERM. Runs against a private broker (its own state folder and free ports),
so the shared broker other tests use is never stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from services.demo.readiness import wait_for_partition_leaders
from switchboard.codec import Codec
from switchboard.config_cache import (
    ChannelRecord,
    RuleRecord,
    channel_key,
    encode_channel_event,
    encode_rule_event,
    rule_key,
)
from switchboard.domain import job_id_for
from switchboard.kafka import make_admin, make_producer
from switchboard.settings import PROJECT_ROOT, Settings
from switchboard.stack import KafkaComponent
from switchboard.topics import CONFIG_TOPIC, delivery_topic, ensure_topics, topic_specs
from tests.router.conftest import make_alert, wait_for

EVENTS_PER_PHASE = 5
RESUME_WAIT_S = 60.0
STOP_WAIT_S = 10.0
# Longer than a transaction's requests take to time out, so the router's
# aborts fail too while the broker is away.
OUTAGE_S = 12.0
STREAM_INTERVAL_S = 0.05
SWITCHBOARD = Path(sys.executable).parent / "switchboard"


def _free_port_pair() -> int:
    """A port whose successor (the broker's controller port) is free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture
def broker(settings: Settings, tmp_path: Path) -> Iterator[KafkaComponent]:
    """A private broker with the design's topics, stopped when the test ends."""
    private = Settings(
        state_dir=tmp_path / "state",
        kafka_bootstrap=f"127.0.0.1:{_free_port_pair()}",
    )
    component = KafkaComponent(private)
    # The shared stack's resolved classpath spares a Maven run.
    shared_classpath = settings.state_dir / "kafka" / "classpath.txt"
    if shared_classpath.exists():
        component.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_classpath, component.home / "classpath.txt")
    component.up()
    try:
        ensure_topics(make_admin(private), topic_specs(private))
        wait_for_partition_leaders(private)
        yield component
    finally:
        component.down()


def _publish_config(settings: Settings, codec: Codec, tenant_id: str) -> RuleRecord:
    """One webhook channel and one rule sending every event of the tenant to it."""
    channel = ChannelRecord(
        id=f"ch-{uuid.uuid4().hex[:12]}",
        tenant_id=tenant_id,
        name="restart channel",
        channel_type="webhook",
        enabled=True,
        config_json="{}",
        secrets_encrypted=None,
    )
    rule = RuleRecord(
        id=f"rule-{uuid.uuid4().hex[:12]}",
        tenant_id=tenant_id,
        channel_id=channel.id,
        name="everything",
        priority=10,
    )
    producer = make_producer(settings)
    producer.produce(
        CONFIG_TOPIC, encode_channel_event(codec, channel, 1), channel_key(channel.id)
    )
    producer.produce(CONFIG_TOPIC, encode_rule_event(codec, rule, 1), rule_key(rule.id))
    producer.flush(30.0)
    return rule


def _start_router(settings: Settings, log_path: Path) -> subprocess.Popen:
    """The real `switchboard router` command against the private broker."""
    env = {
        **os.environ,
        "SWITCHBOARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SWITCHBOARD_STATE_DIR": str(settings.state_dir),
        "SWITCHBOARD_ROUTER_TRANSACTIONAL_ID": f"test.router.{uuid.uuid4().hex[:8]}",
        "SWITCHBOARD_METRICS_PORT": "0",
    }
    command = [str(SWITCHBOARD), "router", "--batch-size", "20"]
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=log_file, stderr=log_file
        )


def _send(settings: Settings, codec: Codec, alerts: list[dict]) -> None:
    producer = make_producer(settings)
    for alert in alerts:
        key = f"{alert['tenant_id']}/{alert['alert_id']}"
        producer.produce(settings.alerts_topic, codec.encode("AlertEvent", alert), key)
    assert producer.flush(30.0) == 0


def _routed_job_ids(settings: Settings, codec: Codec) -> Counter:
    """Job ids of every committed command on the webhook delivery topic."""
    topic = delivery_topic("webhook")
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test.router.reader.{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        refs = [TopicPartition(topic, p, 0) for p in sorted(partitions)]
        ends = [consumer.get_watermark_offsets(ref, timeout=10)[1] for ref in refs]
        consumer.assign(refs)
        job_ids: Counter = Counter()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            positions = consumer.position(refs)
            if all(p.offset >= end for p, end in zip(positions, ends, strict=True)):
                break
            for message in consumer.consume(100, timeout=0.2):
                if message.error() is None:
                    command = codec.decode("DeliveryCommand", message.value())
                    job_ids[command["job_id"]] += 1
        return job_ids
    finally:
        consumer.close()


def _wait_routed(
    settings: Settings, codec: Codec, wanted: set[str], router: subprocess.Popen
) -> Counter:
    """Wait until every wanted job was routed; fail early if the router died."""
    seen: Counter = Counter()

    def routed() -> bool:
        assert router.poll() is None, f"router exited with {router.returncode}"
        seen.clear()
        seen.update(_routed_job_ids(settings, codec))
        return wanted <= set(seen)

    wait_for(routed, f"{len(wanted)} jobs routed", timeout_s=RESUME_WAIT_S)
    return seen


def _kill_broker(broker: KafkaComponent) -> None:
    """SIGKILL the broker's java process, as a crash would."""
    pid = int(broker.pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not broker.answers(timeout_s=1.0), "the broker to go away")


def test_router_resumes_exactly_once_after_the_broker_is_killed_and_restarted(
    broker: KafkaComponent, codec: Codec, unique: str, tmp_path: Path
) -> None:
    settings = broker.settings
    tenant_id = f"tenant-{unique}"
    rule = _publish_config(settings, codec, tenant_id)
    router = _start_router(settings, tmp_path / "router.log")
    try:
        before = [make_alert(tenant_id, f"before-{n}") for n in range(EVENTS_PER_PHASE)]
        _send(settings, codec, before)
        _wait_routed(settings, codec, _job_ids(before, rule), router)

        _kill_broker(broker)
        broker.up()
        after = [make_alert(tenant_id, f"after-{n}") for n in range(EVENTS_PER_PHASE)]
        _send(settings, codec, after)

        wanted = _job_ids(before + after, rule)
        routed = _wait_routed(settings, codec, wanted, router)
        assert set(routed) == wanted
        assert all(count == 1 for count in routed.values()), routed

        router.send_signal(signal.SIGTERM)
        assert router.wait(STOP_WAIT_S) == 0
    finally:
        if router.poll() is None:
            router.kill()
            router.wait()


def _job_ids(alerts: list[dict], rule: RuleRecord) -> set[str]:
    return {job_id_for(a["event_id"], rule.id, rule.channel_id) for a in alerts}


def test_router_rides_out_a_broker_outage_in_the_middle_of_a_stream(
    broker: KafkaComponent, codec: Codec, unique: str, tmp_path: Path
) -> None:
    """Events keep coming while the broker is away for longer than a transaction
    round trip: transactions abort, aborts fail, producers are replaced; the
    router keeps running and routes every event once."""
    settings = broker.settings
    tenant_id = f"tenant-{unique}"
    rule = _publish_config(settings, codec, tenant_id)
    router = _start_router(settings, tmp_path / "router.log")
    sent: list[dict] = []
    stop_sending = threading.Event()

    def stream() -> None:
        # Produced while the broker is away, events wait in the client.
        producer = make_producer(settings)
        while not stop_sending.is_set():
            alert = make_alert(tenant_id, f"stream-{len(sent)}")
            key = f"{alert['tenant_id']}/{alert['alert_id']}"
            producer.produce(
                settings.alerts_topic, codec.encode("AlertEvent", alert), key
            )
            producer.poll(0)
            sent.append(alert)
            time.sleep(STREAM_INTERVAL_S)
        assert producer.flush(120.0) == 0

    sender = threading.Thread(target=stream)
    try:
        first = [make_alert(tenant_id, "first")]
        _send(settings, codec, first)
        _wait_routed(settings, codec, _job_ids(first, rule), router)
        sender.start()
        time.sleep(1.0)

        _kill_broker(broker)
        time.sleep(OUTAGE_S)
        broker.up()
        time.sleep(1.0)
        stop_sending.set()
        sender.join()

        wanted = _job_ids(first + sent, rule)
        routed = _wait_routed(settings, codec, wanted, router)
        assert set(routed) == wanted
        assert all(count == 1 for count in routed.values()), routed
        assert router.poll() is None
    finally:
        stop_sending.set()
        if sender.is_alive():
            sender.join()
        if router.poll() is None:
            router.send_signal(signal.SIGTERM)
            router.wait(STOP_WAIT_S)
