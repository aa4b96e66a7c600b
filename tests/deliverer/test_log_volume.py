"""What a deliverer logs while a channel is down: no line per retry at INFO."""

from __future__ import annotations

import logging
import uuid

import pytest

from services.receivers.webhook import Reply
from tests.deliverer.helpers import (
    JobEvents,
    make_command,
    produce_commands,
    publish_webhook_channel,
    states_of,
)

JOBS = 5


def test_an_outage_logs_each_final_failure_once_and_no_line_per_retry(
    settings, codec, harness, receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.deliverer")
    deliverer = harness(retry_delays="1s", max_attempts=3)
    tenant = str(uuid.uuid4())
    channel = publish_webhook_channel(settings, codec, tenant, receiver.url("/down"))
    receiver.plan("/down", [], then=Reply(503))
    commands = [make_command(tenant, channel) for _ in range(JOBS)]
    job_ids = {c["job_id"] for c in commands}

    produce_commands(settings, codec, deliverer.topics.main, commands)
    events = JobEvents(settings, codec, deliverer.jobs_topic).wait(
        lambda all_events: (
            job_ids <= {e["job_id"] for e in all_events if str(e["state"]) == "dead"}
        )
    )

    for job_id in job_ids:
        assert states_of(events, job_id) == [
            ("retrying", 1),
            ("retrying", 2),
            ("dead", 3),
        ]
    mine = [r for r in caplog.records if getattr(r, "job_id", None) in job_ids]
    failed = [r for r in mine if r.getMessage() == "delivery failed for good"]
    # The control: the deliverer's records do reach this test.
    assert len(failed) == JOBS and {r.levelno for r in failed} == {logging.WARNING}
    retries = [r for r in mine if r.getMessage() == "retry scheduled"]
    assert len(retries) == 2 * JOBS
    assert {r.levelno for r in retries} == {logging.DEBUG}
    per_job_info = [r.getMessage() for r in mine if r.levelno == logging.INFO]
    assert per_job_info == []
    summaries = [
        r
        for r in caplog.records
        if r.name.startswith("services.deliverer") and r.levelno == logging.INFO
        if r.getMessage() == "retries scheduled"
    ]
    # At most one summary a minute: this whole outage fits in one or two.
    assert 1 <= len(summaries) <= 2
