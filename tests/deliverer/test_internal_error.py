"""A command that trips a bug in the deliverer is dead-lettered, not a poison pill."""

from __future__ import annotations

import uuid

from services.deliverer.pipeline import HEADER_FINAL, HEADER_REASON
from services.receivers.webhook import Reply
from switchboard.kafka import header_value
from tests.deliverer.helpers import (
    JobEvents,
    TopicReader,
    make_command,
    produce_commands,
    publish_webhook_channel,
    states_of,
)

# A producer's bug upstream: no command is ever meant to carry attempt -5. The
# retry ladder indexes its tiers by attempt number, so once the attempt fails
# retryably the deliverer raises while settling it, the same way every time.
BROKEN_ATTEMPT = -5


def _reached(job_id: str, state: str):
    return lambda events: any(
        e["job_id"] == job_id and str(e["state"]) == state for e in events
    )


def test_an_internal_error_dead_letters_the_command_and_delivery_goes_on(
    settings, codec, harness, receiver
) -> None:
    deliverer = harness(retry_delays="1s,2s")
    tenant = str(uuid.uuid4())
    down = publish_webhook_channel(settings, codec, tenant, receiver.url("/down"))
    fine = publish_webhook_channel(settings, codec, tenant, receiver.url("/fine"))
    receiver.plan("/down", [], then=Reply(503))
    broken = make_command(tenant, down) | {"attempt": BROKEN_ATTEMPT}
    events = JobEvents(settings, codec, deliverer.jobs_topic)

    produce_commands(settings, codec, deliverer.topics.main, [broken])
    events.wait(_reached(broken["job_id"], "dead"), timeout_s=30)
    later = make_command(tenant, fine)
    produce_commands(settings, codec, deliverer.topics.main, [later])
    recorded = events.wait(_reached(later["job_id"], "delivered"), timeout_s=30)

    assert states_of(recorded, broken["job_id"]) == [("dead", BROKEN_ATTEMPT)]
    [dead_event] = events.for_jobs({broken["job_id"]}, recorded)
    assert dead_event["reason"] == "internal_error"
    assert "IndexError" in dead_event["error"]
    assert states_of(recorded, later["job_id"]) == [("delivered", 1)]
    [dead] = TopicReader(settings, deliverer.topics.dlq).wait_until(
        lambda messages: len(messages) >= 1
    )
    assert codec.decode("DeliveryCommand", dead.value())["job_id"] == broken["job_id"]
    assert header_value(dead, HEADER_REASON) == "internal_error"
    assert header_value(dead, HEADER_FINAL) == "permanent"
    assert deliverer.failure is None
