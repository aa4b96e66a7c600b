"""A dead letter replayed after its receiver is fixed is delivered exactly once.

The whole path is real: a ``switchboard deliverer --type webhook`` process, a
local HTTP receiver that refuses the first request and accepts later ones, the
shared webhook topics, and ``switchboard dlq replay`` in between.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.ops.groups import describe_group
from services.ops.render import group_json
from services.receivers.webhook import Reply, WebhookReceiver
from switchboard.cli import app
from switchboard.topics import JOBS_TOPIC, deliverer_group, delivery_topic, dlq_topic
from tests.ops.helpers import (
    decoded,
    end_offsets,
    make_command,
    produce,
    publish_webhook_channel,
    read_since,
    wait_for,
)

SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STARTUP_WAIT_S = 90.0
STOP_WAIT_S = 20.0
MAIN_TOPIC = delivery_topic("webhook")
DLQ_TOPIC = dlq_topic("webhook")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A receiver that refuses the first request with a 400, then accepts."""
    with WebhookReceiver(SIGNING_SECRET) as running:
        running.plan("/hook", [Reply(status=400)], then=Reply(status=204))
        yield running


@pytest.fixture
def deliverer(settings, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A real webhook deliverer process, stopped with SIGTERM afterwards."""
    env = {
        **os.environ,
        "SWITCHBOARD_ALLOW_PRIVATE_TARGETS": "true",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
    }
    executable = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "switchboard"
    with open(tmp_path / "deliverer.log", "wb") as log_file:
        process = subprocess.Popen(
            [str(executable), "deliverer", "--type", "webhook"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        yield process
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_WAIT_S)


def _wait_for_first_request(receiver, admin, log_path: Path) -> None:
    """Wait for the deliverer's first request; on timeout, say what the group did."""
    try:
        receiver.wait_for(1, "/hook", timeout_s=STARTUP_WAIT_S)
    except TimeoutError:
        detail = group_json(describe_group(admin, deliverer_group("webhook")))
        log = log_path.read_text(errors="replace")[-3000:]
        raise AssertionError(f"no request; group: {detail}; log: {log}") from None


def _for_job(codec, schema: str, topic: str, starts, settings, job_id: str):
    found = decoded(codec, schema, read_since(settings, topic, starts))
    return [record for record in found if str(record["job_id"]) == job_id]


def _replay(job_id: str, *extra: str) -> list[dict]:
    result = CliRunner().invoke(
        app, ["dlq", "replay", "webhook", "--job", job_id, "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_replayed_dead_letter_is_delivered_once_after_the_receiver_is_fixed(
    settings, codec, admin, receiver, deliverer, tmp_path
):
    tenant = str(uuid.uuid4())
    channel = publish_webhook_channel(
        settings, codec, tenant, receiver.url("/hook"), SIGNING_SECRET
    )
    command = make_command(tenant, channel)
    job_id = command["job_id"]
    starts = {t: end_offsets(settings, t) for t in (MAIN_TOPIC, DLQ_TOPIC, JOBS_TOPIC)}

    produce(
        settings,
        MAIN_TOPIC,
        [(channel, codec.encode("DeliveryCommand", command), None)],
    )
    _wait_for_first_request(receiver, admin, tmp_path / "deliverer.log")
    dead = wait_for(
        lambda: _for_job(
            codec, "DeliveryCommand", DLQ_TOPIC, starts[DLQ_TOPIC], settings, job_id
        ),
        "the dead letter",
    )
    replayed = _replay(job_id)
    requests = receiver.wait_for(2, "/hook")
    delivered = wait_for(
        lambda: [
            e
            for e in _for_job(
                codec, "JobEvent", JOBS_TOPIC, starts[JOBS_TOPIC], settings, job_id
            )
            if e["state"] == "delivered"
        ],
        "the delivered job event",
    )
    second = _replay(job_id)

    assert deliverer.poll() is None, "the deliverer process stopped"
    assert [d["attempt"] for d in dead] == [1]
    assert [(r["outcome"], r["attempt"]) for r in replayed] == [("replayed", 2)]
    assert [e["attempt"] for e in delivered] == [2], delivered
    assert [r["outcome"] for r in second] == ["already replayed"]
    commands = _for_job(
        codec, "DeliveryCommand", MAIN_TOPIC, starts[MAIN_TOPIC], settings, job_id
    )
    assert [c["attempt"] for c in commands] == [1, 2]
    assert len(receiver.received("/hook")) == 2
    assert {r.webhook_id for r in requests} == {job_id}
    assert all(r.signature_valid for r in requests)
