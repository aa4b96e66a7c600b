"""A real ``switchboard deliverer`` killed with SIGKILL mid-batch, then restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from services.receivers.webhook import Reply
from switchboard.kafka import make_admin
from switchboard.settings import Settings
from switchboard.topics import JOBS_TOPIC, delivery_topic, ensure_topics, topic_specs
from tests.deliverer.helpers import (
    JobEvents,
    make_command,
    produce_commands,
    publish_webhook_channel,
)

RETRY_DELAYS = "1s,2s"
CHANNELS = 3
COMMANDS_PER_CHANNEL = 60


def _start_deliverer(log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "SWITCHBOARD_RETRY_DELAYS": RETRY_DELAYS,
        "SWITCHBOARD_ALLOW_PRIVATE_TARGETS": "true",
    }
    switchboard = Path(sys.executable).parent / "switchboard"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(switchboard), "deliverer", "--type", "webhook"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def test_sigkill_mid_batch_loses_no_job_and_repeats_keep_their_key(
    settings, codec, receiver, tmp_path
) -> None:
    short = Settings(retry_delays=RETRY_DELAYS)
    ensure_topics(make_admin(short), topic_specs(short))
    tenant = str(uuid.uuid4())
    channels = [
        publish_webhook_channel(settings, codec, tenant, receiver.url(f"/c{i}"))
        for i in range(CHANNELS)
    ]
    for i in range(CHANNELS):
        receiver.plan(f"/c{i}", [], then=Reply(200, delay_s=0.3))
    commands = [
        make_command(tenant, channel)
        for channel in channels
        for _ in range(COMMANDS_PER_CHANNEL)
    ]
    job_ids = {c["job_id"] for c in commands}
    events = JobEvents(settings, codec, JOBS_TOPIC, from_end=True)
    log_path = tmp_path / "deliverer.log"

    first = _start_deliverer(log_path)
    produce_commands(settings, codec, delivery_topic("webhook"), commands)
    try:
        receiver.wait_for(len(commands) // 3, timeout_s=120)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    seen_before_restart = {r.webhook_id for r in receiver.received()}
    second = _start_deliverer(log_path)
    try:
        recorded = events.wait(
            lambda all_events: (
                job_ids
                <= {e["job_id"] for e in all_events if str(e["state"]) == "delivered"}
            ),
            timeout_s=120,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)

    assert len(seen_before_restart & job_ids) < len(job_ids), "kill came too late"
    mine = [r for r in receiver.received() if r.webhook_id in job_ids]
    assert {r.webhook_id for r in mine} == job_ids
    # Requests in flight at the kill had no job event yet, so they are sent
    # again: repeats happen, and each carries its job's key.
    assert len(mine) > len(job_ids), "no job was sent twice"
    for request in mine:
        assert request.signature_valid
        assert request.json()["job_id"] == request.webhook_id
    delivered = [e for e in events.for_jobs(job_ids, recorded)]
    assert {str(e["state"]) for e in delivered} <= {"delivered", "retrying"}
    assert second.returncode == 0, log_path.read_text()[-3000:]
