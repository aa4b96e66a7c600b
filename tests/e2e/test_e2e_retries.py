"""Retries through the whole pipeline: a receiver failing then recovering, and a
permanent failure that goes dead, into the dead-letter topic, and is delivered
once a customer retries it after the receiver is fixed."""

from __future__ import annotations

import time
from typing import Any

from helpers import alert, read_since, wait_until

from services.demo.receivers import Receivers
from services.demo.tenant_api import TenantApi
from services.demo.world import AlertPublisher, configure
from services.receivers.webhook import Reply
from switchboard.codec import Codec
from switchboard.settings import Settings
from switchboard.topics import dlq_topic

HOOK = "/hook"


def everything_to_webhook(channel_ids: dict[str, str]) -> list[dict[str, Any]]:
    """One rule sending every event to the webhook channel."""
    return [{"channel_id": channel_ids["webhook"], "name": "all to the webhook"}]


def _one_job(
    e2e_settings: Settings,
    receivers: Receivers,
    tenant: tuple[str, TenantApi],
    publisher: AlertPublisher,
) -> str:
    tenant_id, api = tenant
    configured = configure(
        api,
        receivers,
        e2e_settings.database_url,
        everything_to_webhook,
        ["webhook"],
        publisher,
    )
    event = alert(tenant_id, "uplink-1")
    publisher.publish(event)
    publisher.flush()
    (job,) = configured.reference.route(event)
    return job.job_id


def _state(api: TenantApi, job_id: str) -> str | None:
    job = api.job(job_id)
    return job["state"] if job else None


def test_a_failing_receiver_gets_the_job_on_a_later_attempt_never_early(
    e2e_settings: Settings,
    receivers: Receivers,
    tenant: tuple[str, TenantApi],
    publisher: AlertPublisher,
) -> None:
    _, api = tenant
    receivers.webhook.plan(HOOK, [Reply(503), Reply(429, (("Retry-After", "1"),))])

    job_id = _one_job(e2e_settings, receivers, tenant, publisher)
    wait_until(lambda: _state(api, job_id) == "delivered", "the job delivered")

    requests = receivers.webhook.received(HOOK)
    assert [r.webhook_id for r in requests] == [job_id] * 3
    tiers_s = [delay_ms / 1000 for _, delay_ms in e2e_settings.retry_tiers]
    gaps = [
        b.received_at - a.received_at
        for a, b in zip(requests, requests[1:], strict=False)
    ]
    assert gaps[0] >= tiers_s[0]
    assert gaps[1] >= tiers_s[1]
    log = api.job(job_id)["log"]
    assert [(a["attempt"], a["state"]) for a in log if a["attempt"]] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "delivered"),
    ]


def test_a_permanent_failure_is_dead_lettered_then_retried_and_delivered(
    e2e_settings: Settings,
    receivers: Receivers,
    tenant: tuple[str, TenantApi],
    publisher: AlertPublisher,
    codec: Codec,
) -> None:
    _, api = tenant
    since_ms = int(time.time() * 1000) - 1000
    receivers.webhook.plan(HOOK, [Reply(400, body=b'{"error": "unknown field"}')])

    job_id = _one_job(e2e_settings, receivers, tenant, publisher)
    wait_until(lambda: _state(api, job_id) == "dead", "the job dead")

    dead_letters = read_since(
        e2e_settings,
        dlq_topic("webhook"),
        since_ms,
        codec,
        "DeliveryCommand",
        lambda command: command["job_id"] == job_id,
    )
    assert len(dead_letters) == 1
    assert api.job(job_id)["attempts"] == 1

    # The receiver is fixed: its plan answers 200 from now on.
    assert api.retry(job_id) == {"job_id": job_id, "attempt": 2}
    wait_until(lambda: _state(api, job_id) == "delivered", "the retried job delivered")
    assert [r.webhook_id for r in receivers.webhook.received(HOOK)] == [job_id] * 2
    assert api.job(job_id)["attempts"] == 2
