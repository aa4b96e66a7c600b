"""A real deliverer process publishes to MQTT, retrying while the broker is down."""

from __future__ import annotations

import asyncio
import json
import uuid

from services.receivers.mqtt import MqttRecorder
from switchboard.jobs import new_command
from switchboard.topics import JOBS_TOPIC
from tests.deliverer.channels.deliverer_process import (
    produce_command,
    publish_channel,
    reached,
    states,
)
from tests.deliverer.helpers import JobEvents, make_alert


async def receive_retained(port: int) -> list:
    async with MqttRecorder("switchboard/#", hostname="127.0.0.1", port=port) as sub:
        return await sub.wait_for(1)


def test_retried_until_the_broker_is_back(
    settings, codec, deliverer, own_broker, unique
):
    tenant = f"tenant-mqtt-{unique}"
    config = {"host": "127.0.0.1", "port": own_broker.port, "qos": 1, "retain": True}
    channel_id = publish_channel(settings, codec, tenant, "mqtt", config, {})
    command = new_command(make_alert(tenant), channel_id, "mqtt", str(uuid.uuid4()))
    events = JobEvents(settings, codec, JOBS_TOPIC, from_end=True)
    own_broker.stop()
    try:
        produce_command(settings, codec, command)
        events.wait(reached(command["job_id"], "retrying"), timeout_s=90)
        own_broker.start()
        recorded = events.wait(reached(command["job_id"], "delivered"), timeout_s=60)
    finally:
        events.close()

    job_states = states(recorded, command["job_id"])
    assert job_states[0] == ("retrying", 1, "broker_unavailable")
    state, attempt, _ = job_states[-1]
    assert (state, attempt >= 2) == ("delivered", True)
    (message,) = asyncio.run(receive_retained(own_broker.port))
    assert json.loads(message.payload)["id"] == command["job_id"]
