"""Every channel type delivered through the whole pipeline, and the job tables
equal to what the receivers saw."""

from __future__ import annotations

from typing import Any

from helpers import alert, wait_until

from services.demo.expect import compare, expected_jobs
from services.demo.receivers import CHANNEL_TYPES, Receivers
from services.demo.tenant_api import TenantApi
from services.demo.world import AlertPublisher, configure
from switchboard.settings import Settings


def everything_to_each(channel_ids: dict[str, str]) -> list[dict[str, Any]]:
    """One rule per channel that matches every event."""
    return [
        {"channel_id": channel_id, "name": f"all to {channel_type}", "priority": i}
        for i, (channel_type, channel_id) in enumerate(channel_ids.items())
    ]


def test_every_channel_type_delivers_every_event_kind(
    e2e_settings: Settings,
    receivers: Receivers,
    tenant: tuple[str, TenantApi],
    publisher: AlertPublisher,
) -> None:
    tenant_id, api = tenant
    configured = configure(
        api,
        receivers,
        e2e_settings.database_url,
        everything_to_each,
        publisher=publisher,
    )
    alerts = [
        alert(tenant_id, f"a{n}", kind)
        for n in range(3)
        for kind in ("OPEN", "ACKNOWLEDGED", "CLOSED")
    ]
    for event in alerts:
        publisher.publish(event)
    publisher.flush()
    expected = expected_jobs(configured.reference, alerts)

    wanted = {job.job_id for job in expected}
    wait_until(
        lambda: not compare(expected, receivers.arrivals()).missing,
        "every job at its receiver",
        describe=lambda: (
            compare(expected, receivers.arrivals()).problems()
            + [
                str(api.job(j.job_id))
                for j in compare(expected, receivers.arrivals()).missing[:2]
            ]
        ),
    )
    wait_until(
        lambda: len(api.jobs(status="delivered")) == len(wanted),
        "every job recorded as delivered",
    )

    verdict = compare(expected, receivers.arrivals())
    assert verdict.ok, verdict.problems()
    assert {a.channel_type for a in verdict.first_arrival.values()} == set(
        CHANNEL_TYPES
    )
    assert len(expected) == len(alerts) * len(CHANNEL_TYPES)
    recorded = {job["job_id"]: job for job in api.jobs()}
    assert set(recorded) == set(verdict.first_arrival)
    for job_id, arrival in verdict.first_arrival.items():
        assert recorded[job_id]["channel_type"] == arrival.channel_type
        assert recorded[job_id]["state"] == "delivered"
        assert recorded[job_id]["attempts"] == 1
