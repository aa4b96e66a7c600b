"""Exactly once across crashes: SIGKILL the router mid-stream, restart, count jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from services.router.matcher import reference_matches
from services.router.throttle import MS_PER_MINUTE
from switchboard.domain import job_id_for
from switchboard.settings import PROJECT_ROOT

EVENTS = 3000
CHUNK = 100
ALERTS = 150
THROTTLE_MINUTES = 5
KILLS = 2
SWITCHBOARD = Path(sys.executable).parent / "switchboard"


def start_router(world, transactional_id: str, log_path: Path) -> subprocess.Popen:
    """The real `switchboard router` command as a child process."""
    topics = world.topics
    env = {
        **os.environ,
        "SWITCHBOARD_ALERTS_TOPIC": topics.alerts,
        "SWITCHBOARD_ROUTER_JOBS_TOPIC": topics.jobs,
        "SWITCHBOARD_ROUTER_THROTTLE_TOPIC": topics.throttle,
        "SWITCHBOARD_ROUTER_DLQ_TOPIC": topics.dlq,
        "SWITCHBOARD_ROUTER_DELIVERY_TOPIC_PREFIX": topics.delivery_prefix,
        "SWITCHBOARD_ROUTER_TRANSACTIONAL_ID": transactional_id,
        "SWITCHBOARD_METRICS_PORT": "0",
    }
    command = [str(SWITCHBOARD), "router", "--group", world.group, "--batch-size", "20"]
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=log_file, stderr=log_file
        )


def committed_total(world) -> int:
    """Input offsets the router group has committed over all partitions."""
    probe = Consumer(
        {"bootstrap.servers": world.settings.kafka_bootstrap, "group.id": world.group}
    )
    try:
        refs = [TopicPartition(world.topics.alerts, p) for p in range(3)]
        return sum(max(c.offset, 0) for c in probe.committed(refs, timeout=30))
    finally:
        probe.close()


def stream(world, alerts: list[dict[str, Any]]) -> threading.Thread:
    """Produce ``alerts`` in chunks from a thread, so the router is mid-stream."""

    def run() -> None:
        for start in range(0, len(alerts), CHUNK):
            world.send(*alerts[start : start + CHUNK])
            time.sleep(0.2)

    thread = threading.Thread(target=run, name="alert-stream", daemon=True)
    thread.start()
    return thread


def expected_jobs(world, rules, channels, alerts) -> dict[str, str]:
    """Job id -> state the router must decide, replaying the rules and the throttle."""
    rules_by_id = {rule.id: rule for rule in rules}
    channels_by_id = {channel.id: channel for channel in channels}
    last_sent: dict[tuple, int] = {}
    jobs = {}
    for alert in alerts:
        event_ms = int(alert["occurred_at"].timestamp() * 1000)
        for rule_id in reference_matches(rules, channels_by_id, alert):
            rule = rules_by_id[rule_id]
            job_id = job_id_for(alert["event_id"], rule_id, rule.channel_id)
            key = (rule_id, alert["kind"], alert["alert_id"])
            opened = last_sent.get((rule_id, "OPEN", alert["alert_id"]))
            reopened = (
                alert["kind"] != "OPEN"
                and key in last_sent
                and opened is not None
                and opened >= last_sent[key]
            )
            window_ms = rule.throttle_minutes * MS_PER_MINUTE
            if (
                window_ms
                and key in last_sent
                and event_ms - last_sent[key] < window_ms
                and not reopened
            ):
                jobs[job_id] = "suppressed"
                continue
            last_sent[key] = event_ms
            jobs[job_id] = "queued"
    return jobs


def make_alerts(world) -> list[dict[str, Any]]:
    """A few thousand events over many alerts, some repeating inside the window."""
    start = world.alert("a")["occurred_at"]
    kinds = ["OPEN", "OPEN", "ACKNOWLEDGED", "CLOSED"]
    types = ["cpu", "disk", "link"]
    return [
        world.alert(
            f"a-{i % ALERTS}",
            kind=kinds[(i // ALERTS) % len(kinds)],
            alert_type=types[i % len(types)],
            severity="CRITICAL" if (i % ALERTS) % 7 == 0 else "MEDIUM",
            occurred_at=start + timedelta(seconds=20 * (i // ALERTS)),
        )
        for i in range(EVENTS)
    ]


def test_sigkill_mid_stream_yields_every_job_exactly_once(world, reader, tmp_path):
    """Two SIGKILLs while events stream in; every expected job appears exactly once."""
    webhook, slack = world.channel("webhook"), world.channel("slack")
    rules = [
        world.rule(webhook, priority=1),
        world.rule(slack, priority=2, alert_types=("cpu", "disk")),
        world.rule(slack, priority=3, min_severity="CRITICAL", throttle_minutes=5),
    ]
    alerts = make_alerts(world)
    expected = expected_jobs(world, rules, [webhook, slack], alerts)
    transactional_id = f"test.router.{world.unique}.sigkill"
    log_path = tmp_path / "router.log"

    producer_thread = stream(world, alerts)
    committed_at_kills = [0]
    for _kill in range(KILLS):
        router = start_router(world, transactional_id, log_path)
        progress = committed_at_kills[-1] + EVENTS // 5
        world.wait_for(lambda n=progress: committed_total(world) >= n, "progress")
        router.send_signal(signal.SIGKILL)
        router.wait(30)
        committed_at_kills.append(committed_total(world))
    router = start_router(world, transactional_id, log_path)
    try:
        producer_thread.join(120)
        world.wait_consumed()
    finally:
        router.send_signal(signal.SIGTERM)
        router.wait(60)

    delivered = Counter()
    for channel_type in ("webhook", "slack"):
        for message in reader.read(world.topics.delivery(channel_type)):
            command = world.codec.decode("DeliveryCommand", message.value())
            delivered[command["job_id"]] += 1
    events = Counter()
    for message in reader.read(world.topics.jobs):
        event = world.codec.decode("JobEvent", message.value())
        events[(event["job_id"], event["state"])] += 1

    queued = {job for job, state in expected.items() if state == "queued"}
    suppressed = {job for job, state in expected.items() if state == "suppressed"}
    assert suppressed, "the stream should exercise the throttle"
    assert all(count < EVENTS for count in committed_at_kills), committed_at_kills
    assert log_path.read_text().count("router ready") == KILLS + 1
    assert committed_total(world) == EVENTS
    assert delivered == Counter({job: 1 for job in queued})
    assert events == Counter({(job, state): 1 for job, state in expected.items()})
