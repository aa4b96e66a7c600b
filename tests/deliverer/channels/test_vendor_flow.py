"""Slack, Teams and PagerDuty through a real ``switchboard deliverer`` process.

One deliverer subprocess serves the three types and one ``switchboard
recorder`` subprocess projects notify.jobs into the job tables. Each test
publishes its own channels (a fresh tenant) to notify.config and its commands
to notify.delivery.<type>, then checks what the local vendor received, the job
events in notify.jobs, the job rows in PostgreSQL, and that the channel's
secret is in none of them nor in the deliverer's log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from services.deliverer.channels.pagerduty.config import Config as PagerDutyConfig
from services.deliverer.channels.pagerduty.config import Secrets as PagerDutySecrets
from services.deliverer.channels.pagerduty.event import dedup_key
from services.deliverer.channels.slack.config import Config as SlackConfig
from services.deliverer.channels.slack.config import Secrets as SlackSecrets
from services.deliverer.channels.teams.config import Config as TeamsConfig
from services.deliverer.channels.teams.config import Secrets as TeamsSecrets
from services.receivers.pagerduty import PagerDutyReceiver
from services.receivers.slack import SlackReceiver, displayed
from services.receivers.teams import TeamsReceiver
from switchboard.codec import Codec
from switchboard.config_cache import ChannelRecord, channel_key, encode_channel_event
from switchboard.jobs import new_command
from switchboard.kafka import make_producer
from switchboard.secrets import SecretBox
from switchboard.settings import Settings
from switchboard.topics import CONFIG_TOPIC, JOBS_TOPIC, delivery_topic
from tests.deliverer.channels.vendor_channels import (
    card_validator,
    make_alert,
    pagerduty_event_validator,
)
from tests.deliverer.helpers import JobEvents, produce_commands, states_of

RETRY_DELAYS = "1s,2s"
WAIT_S = 90.0


def _start(command: list[str], log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "SWITCHBOARD_RETRY_DELAYS": RETRY_DELAYS,
        "SWITCHBOARD_MAX_ATTEMPTS": "3",
        "SWITCHBOARD_ALLOW_PRIVATE_TARGETS": "true",
        "SWITCHBOARD_LOG_LEVEL": "DEBUG",
    }
    switchboard = Path(sys.executable).parent / "switchboard"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(switchboard), *command], env=env, stdout=log, stderr=subprocess.STDOUT
        )


@pytest.fixture(scope="module")
def deliverer_log(settings: Settings, tmp_path_factory) -> Iterator[Path]:
    """A deliverer for the three types and a recorder, stopped after the module."""
    logs = tmp_path_factory.mktemp("vendor-flow")
    deliverer_log = logs / "deliverer.log"
    processes = [
        _start(["deliverer", "--type", "slack,teams,pagerduty"], deliverer_log),
        _start(["recorder"], logs / "recorder.log"),
    ]
    yield deliverer_log
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)


def publish_channel(
    settings: Settings,
    codec: Codec,
    tenant_id: str,
    channel_type: str,
    config: BaseModel,
    secrets: BaseModel,
) -> str:
    """Publish a channel's ConfigEvent to notify.config, secrets encrypted."""
    channel_id = str(uuid.uuid4())
    record = ChannelRecord(
        id=channel_id,
        tenant_id=tenant_id,
        name=f"{channel_type} {channel_id[:8]}",
        channel_type=channel_type,
        enabled=True,
        config_json=config.model_dump_json(exclude_none=True),
        secrets_encrypted=SecretBox.from_settings(settings).encrypt(
            secrets.model_dump(mode="json")
        ),
    )
    producer = make_producer(settings)
    producer.produce(
        CONFIG_TOPIC, encode_channel_event(codec, record, 0), channel_key(channel_id)
    )
    assert producer.flush(30) == 0
    return channel_id


def command_for(channel_id: str, channel_type: str, tenant_id: str, **alert: Any):
    """A first-attempt command for a new alert event of ``tenant_id``."""
    event = make_alert(tenant_id=tenant_id, **alert)
    return new_command(event, channel_id, channel_type, None)


def wait_for_states(
    events: JobEvents, wanted: dict[str, str], timeout_s: float = WAIT_S
) -> list[dict]:
    """Read notify.jobs until each job id has reached its wanted state."""

    def reached(all_events: list[dict]) -> bool:
        seen = {(e["job_id"], str(e["state"])) for e in all_events}
        return set(wanted.items()) <= seen

    return events.wait(reached, timeout_s)


def recorded_rows(
    conn: psycopg.Connection, wanted: dict[str, str], timeout_s: float = WAIT_S
) -> list[tuple]:
    """The job and attempt rows of ``wanted`` once the recorder has them final."""
    deadline = time.monotonic() + timeout_s
    ids = list(wanted)
    while True:
        states = dict(
            conn.execute(
                "SELECT job_id::text, state FROM notification_jobs"
                " WHERE job_id = ANY(%s::uuid[])",
                [ids],
            ).fetchall()
        )
        if states == wanted:
            break
        assert time.monotonic() < deadline, f"recorded {states}, wanted {wanted}"
        time.sleep(0.2)
    jobs = conn.execute(
        "SELECT * FROM notification_jobs WHERE job_id = ANY(%s::uuid[])", [ids]
    ).fetchall()
    attempts = conn.execute(
        "SELECT * FROM notification_log WHERE job_id = ANY(%s::uuid[])", [ids]
    ).fetchall()
    return jobs + attempts


def assert_secret_nowhere(
    secret: str, events: list[dict], rows: list[tuple], log_path: Path
) -> None:
    """``secret`` is in no job event, no job row and no deliverer log line."""
    assert secret not in json.dumps(events, default=str)
    assert secret not in json.dumps(rows, default=str)
    assert secret not in log_path.read_text(errors="replace")


def test_slack_through_the_deliverer(deliverer_log, settings, codec, conn):
    tenant = str(uuid.uuid4())
    with SlackReceiver() as slack:
        url = slack.webhook_url
        good = publish_channel(
            settings,
            codec,
            tenant,
            "slack",
            SlackConfig(),
            SlackSecrets(webhook_url=slack.webhook_url),
        )
        # Renders for the sample alert at save time, fails for an alert without labels.
        templated = publish_channel(
            settings,
            codec,
            tenant,
            "slack",
            SlackConfig(template="{{ 1 // (labels|length) }}"),
            SlackSecrets(webhook_url=slack.webhook_url),
        )
        retried = command_for(good, "slack", tenant, summary="Disk <90%> & rising")
        broken = command_for(templated, "slack", tenant, labels={})
        wanted = {retried["job_id"]: "delivered", broken["job_id"]: "dead"}
        events = JobEvents(settings, codec, JOBS_TOPIC, from_end=True)
        slack.fail_next(503)

        produce_commands(settings, codec, delivery_topic("slack"), [retried, broken])
        seen = events.for_jobs(set(wanted), wait_for_states(events, wanted))

    assert states_of(seen, retried["job_id"]) == [("retrying", 1), ("delivered", 2)]
    [dead] = [e for e in seen if e["job_id"] == broken["job_id"]]
    assert (dead["reason"], dead["attempt"]) == ("template_error", 1)
    assert "ZeroDivisionError" in dead["error"]
    # The deliverer logs the final failure once the job event is acknowledged,
    # so the line may land just after the event was seen.
    failures = wait_for_log_lines(
        deliverer_log, broken["job_id"], "reason=template_error"
    )
    assert failures and "ZeroDivisionError" in failures[0]  # logged, not dropped
    [message] = slack.accepted
    assert displayed(message["blocks"][1]["text"]["text"]) == "Disk <90%> & rising"
    rows = recorded_rows(conn, wanted)
    assert_secret_nowhere(url, seen, rows, deliverer_log)
    assert_secret_nowhere(slack.token, seen, rows, deliverer_log)


def test_teams_through_the_deliverer(deliverer_log, settings, codec, conn):
    tenant = str(uuid.uuid4())
    with TeamsReceiver(card_validator=card_validator()) as teams:
        url = teams.webhook_url
        channel = publish_channel(
            settings,
            codec,
            tenant,
            "teams",
            TeamsConfig(),
            TeamsSecrets(webhook_url=teams.webhook_url),
        )
        command = command_for(channel, "teams", tenant, summary="Störung 🚨")
        wanted = {command["job_id"]: "delivered"}
        events = JobEvents(settings, codec, JOBS_TOPIC, from_end=True)
        teams.fail_next(429, headers={"Retry-After": "1"})

        produce_commands(settings, codec, delivery_topic("teams"), [command])
        seen = events.for_jobs(set(wanted), wait_for_states(events, wanted))

    assert states_of(seen, command["job_id"]) == [("retrying", 1), ("delivered", 2)]
    assert [e["status_code"] for e in seen] == [429, 202]
    [card] = teams.cards
    assert card["body"][1]["text"] == "Störung 🚨"
    rows = recorded_rows(conn, wanted)
    assert_secret_nowhere(url, seen, rows, deliverer_log)
    assert_secret_nowhere(teams.signature, seen, rows, deliverer_log)


def test_pagerduty_lifecycle_through_the_deliverer(
    deliverer_log, settings, codec, conn
):
    tenant = str(uuid.uuid4())
    validator = pagerduty_event_validator()
    with PagerDutyReceiver(event_validator=validator) as pagerduty:
        channel = publish_channel(
            settings,
            codec,
            tenant,
            "pagerduty",
            PagerDutyConfig(events_url=pagerduty.events_url),
            PagerDutySecrets(routing_key=pagerduty.routing_key),
        )
        alert_id = f"alert-{uuid.uuid4().hex[:8]}"
        events = JobEvents(settings, codec, JOBS_TOPIC, from_end=True)
        pagerduty.fail_next(500)
        seen, wanted, states = [], {}, []
        # One event at a time: PagerDuty must see trigger before acknowledge.
        for kind in ("OPEN", "ACKNOWLEDGED", "CLOSED"):
            command = command_for(
                channel, "pagerduty", tenant, kind=kind, alert_id=alert_id
            )
            wanted[command["job_id"]] = "delivered"
            produce_commands(settings, codec, delivery_topic("pagerduty"), [command])
            seen = events.for_jobs(set(wanted), wait_for_states(events, wanted))
            states.append(dict(pagerduty.incidents))

    key = dedup_key(tenant, alert_id)
    assert [s[key] for s in states] == ["triggered", "acknowledged", "resolved"]
    assert [e["event_action"] for e in pagerduty.accepted] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert [(str(e["state"]), e["status_code"]) for e in seen] == [
        ("retrying", 500),
        ("delivered", 202),
        ("delivered", 202),
        ("delivered", 202),
    ]
    rows = recorded_rows(conn, wanted)
    assert_secret_nowhere(pagerduty.routing_key, seen, rows, deliverer_log)


def wait_for_log_lines(log: Path, *needles: str, timeout_s: float = 10.0) -> list[str]:
    """Lines of ``log`` containing every needle, waiting up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [
            line
            for line in log.read_text().splitlines()
            if all(needle in line for needle in needles)
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)
