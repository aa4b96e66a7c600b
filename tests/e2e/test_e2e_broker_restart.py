"""The Kafka broker stopped for a few seconds and started again: the pipeline
resumes by itself and delivers everything, once per job.

Runs against a private broker (its own state folder and free ports) and a
scratch database, so the shared broker other tests use is never stopped and
the shared outbox relay does not publish this test's configuration elsewhere.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import pipeline_environment, short_tiers
from helpers import alert, read_since, wait_until

from services.demo.expect import compare, expected_jobs
from services.demo.processes import Pipeline
from services.demo.readiness import wait_for_partition_leaders
from services.demo.receivers import Receivers
from services.demo.tenant_api import TenantApi, new_tenant
from services.demo.world import AlertPublisher, configure
from switchboard import db
from switchboard.codec import Codec
from switchboard.settings import Settings
from switchboard.stack import KafkaComponent
from switchboard.topics import JOBS_TOPIC

BROKER_DOWN_S = 5.0
RESUME_WAIT_S = 60.0
EVENTS_PER_PHASE = 10


def _free_port_pair() -> int:
    """A port whose successor (the controller's) is free too."""
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


@dataclass
class PrivateStack:
    """A private broker, a scratch database and a pipeline using them."""

    settings: Settings
    broker: KafkaComponent
    pipeline: Pipeline


@pytest.fixture
def private_stack(
    settings: Settings, scratch_database: str, tmp_path: Path
) -> Iterator[PrivateStack]:
    """Broker on free ports under ``tmp_path``; the pipeline's processes on it."""
    private = Settings(
        state_dir=tmp_path / "state",
        kafka_bootstrap=f"127.0.0.1:{_free_port_pair()}",
        database_url=scratch_database,
    )
    broker = KafkaComponent(private)
    # The shared stack's resolved classpath spares a Maven run.
    shared_classpath = settings.state_dir / "kafka" / "classpath.txt"
    if shared_classpath.exists():
        broker.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_classpath, broker.home / "classpath.txt")
    broker.up()
    try:
        db.migrate(scratch_database)
        private = short_tiers(private)
        wait_for_partition_leaders(private)
        pipeline = Pipeline.create(
            tmp_path / "logs", pipeline_environment(private), ["webhook"]
        )
        with pipeline:
            yield PrivateStack(private, broker, pipeline)
    finally:
        broker.down()


def everything_to_webhook(channel_ids: dict[str, str]) -> list[dict[str, Any]]:
    """One rule sending every event to the webhook channel."""
    return [{"channel_id": channel_ids["webhook"], "name": "all to the webhook"}]


def test_the_pipeline_resumes_by_itself_after_the_broker_restarts(
    private_stack: PrivateStack, tmp_path: Path, codec: Codec, unique: str
) -> None:
    settings = private_stack.settings
    tenant_id, key = new_tenant(settings.database_url, f"e2e-broker-{unique}")
    api = TenantApi(private_stack.pipeline.api_url, key)
    publisher = AlertPublisher(settings, codec)
    with Receivers(
        tmp_path, settings.mqtt_host, settings.mqtt_port, unique
    ) as receivers:
        configured = configure(
            api,
            receivers,
            settings.database_url,
            everything_to_webhook,
            ["webhook"],
            publisher,
        )
        before = [alert(tenant_id, f"before-{n}") for n in range(EVENTS_PER_PHASE)]
        _publish(publisher, before)
        _wait_delivered(receivers, api, expected_jobs(configured.reference, before))

        private_stack.broker.down()
        during = [alert(tenant_id, f"during-{n}") for n in range(EVENTS_PER_PHASE)]
        for event in during:
            publisher.publish(event)
        time.sleep(BROKER_DOWN_S)
        private_stack.broker.up()
        publisher.flush()

        expected = expected_jobs(configured.reference, before + during)
        _wait_delivered(
            receivers,
            api,
            expected,
            lambda: _where_jobs_are(settings, codec, tenant_id),
        )
        verdict = compare(expected, receivers.arrivals())
        assert verdict.ok, verdict.problems()
        assert not private_stack.pipeline.dead()
    api.close()


def _publish(publisher: AlertPublisher, alerts: list[dict]) -> None:
    for event in alerts:
        publisher.publish(event)
    publisher.flush()


def _where_jobs_are(settings: Settings, codec: Codec, tenant_id: str) -> str:
    """How far the tenant's events got, stage by stage (for a failure message)."""
    mine = lambda record: record.get("tenant_id", record.get("tenant")) == tenant_id  # noqa: E731
    alerts = read_since(settings, settings.alerts_topic, 0, codec, "AlertEvent", mine)
    jobs = read_since(settings, JOBS_TOPIC, 0, codec, "JobEvent", mine)
    states = Counter(event["state"] for event, _headers in jobs)
    return f"{len(alerts)} alerts on the topic; job events {dict(states)}"


def _wait_delivered(
    receivers: Receivers,
    api: TenantApi,
    expected: list,
    where: Callable[[], str] = lambda: "",
) -> None:
    wanted = {job.job_id for job in expected}
    wait_until(
        lambda: wanted <= {a.job_id for a in receivers.arrivals()},
        "every job at the receiver",
        timeout_s=RESUME_WAIT_S,
        describe=lambda: [*compare(expected, receivers.arrivals()).problems(), where()],
    )
    wait_until(
        lambda: {j["job_id"] for j in api.jobs(status="delivered")} == wanted,
        "every job recorded as delivered",
        timeout_s=60,
    )
