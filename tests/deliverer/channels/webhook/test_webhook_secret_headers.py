"""Secret headers through a running deliverer: sent, and never in a job event."""

from __future__ import annotations

import uuid

from services.deliverer.redact import REDACTED
from services.receivers.webhook import Reply
from tests.deliverer.helpers import (
    SIGNING_SECRET,
    JobEvents,
    TopicReader,
    make_command,
    produce_commands,
    publish_webhook_channel,
)

TOKEN = "hdr-t0ken-8c2d4e"


def test_secret_headers_reach_the_receiver_and_never_a_job_event(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness(max_attempts=1)
    tenant = str(uuid.uuid4())
    channel = publish_webhook_channel(
        settings,
        codec,
        tenant,
        receiver.url("/echo"),
        headers={"X-Team": "noc"},
        secrets={
            "signing_secret": SIGNING_SECRET,
            "secret_headers": {"Authorization": f"Bearer {TOKEN}"},
        },
    )
    receiver.plan("/echo", [Reply(401, body=f"token {TOKEN} expired".encode())])
    command = make_command(tenant, channel)

    produce_commands(settings, codec, deliverer.topics.main, [command])
    events = JobEvents(settings, codec, deliverer.jobs_topic).wait(
        lambda all_events: any(
            e["job_id"] == command["job_id"] and str(e["state"]) == "dead"
            for e in all_events
        )
    )

    [request] = receiver.received()
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-team"] == "noc"
    [dead] = [e for e in events if e["job_id"] == command["job_id"] and e["error"]]
    assert TOKEN not in dead["error"] and REDACTED in dead["error"]
    [letter] = TopicReader(settings, deliverer.topics.dlq).wait_until(
        lambda messages: len(messages) >= 1
    )
    assert all(TOKEN.encode() not in (value or b"") for _, value in letter.headers())
