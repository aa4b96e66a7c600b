"""Each stage killed with SIGKILL during a stream and restarted: nothing lost, no
job created twice, and every repeat of a job carrying the same idempotency key."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from helpers import alert, read_since, wait_until

from services.demo.expect import compare, expected_jobs
from services.demo.processes import Pipeline
from services.demo.receivers import HOOK_PATH, Receivers
from services.demo.tenant_api import TenantApi
from services.demo.world import AlertPublisher, configure
from switchboard.codec import Codec
from switchboard.settings import Settings
from switchboard.topics import JOBS_TOPIC

EVENTS_PER_HALF = 30
SPREAD_S = 0.02


def webhook_and_email(channel_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Every event to the webhook; HIGH and worse by mail too."""
    return [
        {"channel_id": channel_ids["webhook"], "name": "all to the webhook"},
        {
            "channel_id": channel_ids["email"],
            "name": "HIGH by mail",
            "min_severity": "HIGH",
        },
    ]


def _publish(publisher: AlertPublisher, alerts: list[dict]) -> None:
    for event in alerts:
        publisher.publish(event)
        time.sleep(SPREAD_S)
    publisher.flush()


@pytest.mark.parametrize("stage", ["router", "deliverer", "recorder"])
def test_a_stage_killed_mid_stream_loses_nothing_and_duplicates_no_job(
    stage: str,
    e2e_settings: Settings,
    pipeline: Pipeline,
    receivers: Receivers,
    tenant: tuple[str, TenantApi],
    publisher: AlertPublisher,
    codec: Codec,
) -> None:
    tenant_id, api = tenant
    since_ms = int(time.time() * 1000) - 1000
    configured = configure(
        api,
        receivers,
        e2e_settings.database_url,
        webhook_and_email,
        ["webhook", "email"],
        publisher,
    )
    severities = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
    alerts = [
        alert(tenant_id, f"a{n}", severity=severities[n % 4])
        for n in range(2 * EVENTS_PER_HALF)
    ]

    _publish(publisher, alerts[:EVENTS_PER_HALF])
    pipeline.services[stage].kill()
    _publish(publisher, alerts[EVENTS_PER_HALF:])
    pipeline.services[stage].restart()

    expected = expected_jobs(configured.reference, alerts)
    wanted = {job.job_id for job in expected}
    wait_until(
        lambda: wanted <= {a.job_id for a in receivers.arrivals()},
        f"every job delivered after the {stage} restarted",
        timeout_s=90,
    )
    wait_until(
        lambda: len(api.jobs(status="delivered")) == len(wanted),
        "every job recorded as delivered",
    )

    verdict = compare(expected, receivers.arrivals())
    assert verdict.ok, verdict.problems()
    assert {job["job_id"] for job in api.jobs()} == wanted
    _assert_one_job_each(e2e_settings, codec, tenant_id, since_ms, wanted)
    _assert_repeats_keep_their_key(receivers, wanted)


def _assert_one_job_each(
    settings: Settings, codec: Codec, tenant_id: str, since_ms: int, wanted: set[str]
) -> None:
    """Each job was queued exactly once in the committed log of notify.jobs."""
    events = read_since(
        settings,
        JOBS_TOPIC,
        since_ms,
        codec,
        "JobEvent",
        lambda event: event["tenant_id"] == tenant_id and event["state"] == "queued",
    )
    queued = Counter(event["job_id"] for event, _headers in events)
    assert set(queued) == wanted
    assert set(queued.values()) == {1}


def _assert_repeats_keep_their_key(receivers: Receivers, wanted: set[str]) -> None:
    """Every request, first or repeated, names its job the same way everywhere."""
    for request in receivers.webhook.received(HOOK_PATH):
        assert request.signature_valid
        assert json.loads(request.body)["job_id"] == request.webhook_id
        assert request.webhook_id in wanted
    for arrival in receivers.arrivals():
        assert arrival.job_id in wanted
