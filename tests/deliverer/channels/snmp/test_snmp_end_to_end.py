"""A real deliverer process sends SNMPv3 traps from notify.delivery.snmp."""

from __future__ import annotations

import uuid

from services.deliverer.channels.snmp.sender import engine_id_for
from switchboard.jobs import new_command
from switchboard.topics import JOBS_TOPIC
from tests.deliverer.channels.deliverer_process import (
    produce_command,
    publish_channel,
    reached,
    states,
)
from tests.deliverer.helpers import JobEvents, make_alert

AUTH_KEY, PRIV_KEY = "auth-key-5c1e9d", "priv-key-b7a204"
JOB_ID_OID = "1.3.6.1.4.1.99999.1.1.1.0"


def test_v3_trap_delivered(settings, codec, deliverer, receiver, unique):
    tenant = f"tenant-snmp-{unique}"
    config = {
        "host": "127.0.0.1",
        "port": receiver.port,
        "version": "v3",
        "username": "sb-sha-aes",
        "auth_protocol": "SHA",
        "priv_protocol": "AES",
        # The receiver fixture knows this user under the test channel's engine id.
        "engine_id": engine_id_for("channel-snmp"),
        "timeout_s": 5,
    }
    secrets = {"auth_key": AUTH_KEY, "priv_key": PRIV_KEY}
    channel_id = publish_channel(settings, codec, tenant, "snmp", config, secrets)
    command = new_command(make_alert(tenant), channel_id, "snmp", str(uuid.uuid4()))
    events = JobEvents(settings, codec, JOBS_TOPIC, from_end=True)
    try:
        produce_command(settings, codec, command)
        recorded = events.wait(reached(command["job_id"], "delivered"), timeout_s=90)
    finally:
        events.close()

    assert states(recorded, command["job_id"]) == [("delivered", 1, "delivered")]
    (trap,) = receiver.wait_for(1)
    assert "SNMP v3, user sb-sha-aes" in trap.security
    assert trap.get(JOB_ID_OID).text == command["job_id"]
    log = deliverer.log_text()
    assert AUTH_KEY not in log and PRIV_KEY not in log
    assert not any(AUTH_KEY in str(e) or PRIV_KEY in str(e) for e in recorded)
