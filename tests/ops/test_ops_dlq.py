"""Dead-letter list and replay against the real broker and database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from services.ops.dlq import Replayer, read_dead_letters
from switchboard.cli import app
from switchboard.kafka import make_producer
from switchboard.topics import JOBS_TOPIC, delivery_topic
from tests.ops.helpers import (
    dead_letter_headers,
    decoded,
    end_offsets,
    make_command,
    produce,
    read_since,
)

MAIN_TOPIC = delivery_topic("webhook")
SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")


@pytest.fixture
def dead_letters(settings, codec, make_topic):
    """A private dead-letter topic holding two jobs' dead letters and a broken one."""
    topic = make_topic("dlq", partitions=2)
    tenant, channel = str(uuid.uuid4()), str(uuid.uuid4())
    commands = [make_command(tenant, channel, attempt) for attempt in (3, 6)]
    messages = [
        (
            channel,
            codec.encode("DeliveryCommand", c),
            dead_letter_headers("http_4xx", a),
        )
        for c, a in zip(commands, (3, 6), strict=True)
    ]
    messages.append((channel, b"not avro", dead_letter_headers("undecodable", 0)))
    produce(settings, topic, messages, partition=0)
    return topic, channel, commands


def _cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def _replayed_commands(settings, codec, starts, channel):
    found = decoded(codec, "DeliveryCommand", read_since(settings, MAIN_TOPIC, starts))
    return [c for c in found if c["channel_id"] == channel]


def test_list_shows_what_is_on_the_dead_letter_topic(dead_letters):
    topic, channel, commands = dead_letters

    listed = json.loads(
        _cli("dlq", "list", "webhook", "--topic", topic, "--json").stdout
    )
    paged = json.loads(
        _cli(
            "dlq",
            "list",
            "webhook",
            "--topic",
            topic,
            "--json",
            "--limit",
            "2",
            "--page",
            "2",
        ).stdout
    )
    table = _cli("dlq", "list", "webhook", "--topic", topic).stdout
    broken = json.loads(
        _cli(
            "dlq",
            "list",
            "webhook",
            "--topic",
            topic,
            "--json",
            "--reason",
            "undecodable",
        ).stdout
    )

    assert listed["total"] == 3
    items = {item["offset"]: item for item in listed["items"]}
    assert [items[o]["job_id"] for o in (0, 1)] == [c["job_id"] for c in commands]
    assert items[0]["channel_id"] == channel
    assert (items[1]["reason"], items[1]["attempt"], items[1]["final"]) == (
        "http_4xx",
        6,
        "permanent",
    )
    assert items[2]["job_id"] is None
    assert items[2]["reason"] == "undecodable"
    assert len(paged["items"]) == 1
    assert "3 dead letter(s)" in table
    assert [item["offset"] for item in broken["items"]] == [2]


def test_dry_run_changes_nothing(settings, codec, dict_conn, dead_letters):
    topic, channel, commands = dead_letters
    starts = end_offsets(settings, MAIN_TOPIC)

    result = _cli("dlq", "replay", "webhook", "--topic", topic, "--all", "--dry-run")

    assert "would replay" in result.stdout
    assert _replayed_commands(settings, codec, starts, channel) == []
    rows = dict_conn.execute("SELECT * FROM dlq_replays WHERE topic = %s", (topic,))
    assert rows.fetchall() == []


def test_a_dead_letter_is_replayed_once_unless_again(
    settings, codec, dict_conn, dead_letters
):
    topic, channel, commands = dead_letters
    job_id = commands[1]["job_id"]
    main_starts = end_offsets(settings, MAIN_TOPIC)
    jobs_starts = end_offsets(settings, JOBS_TOPIC)
    replay = ("dlq", "replay", "webhook", "--topic", topic, "--job", job_id, "--json")

    first = json.loads(_cli(*replay).stdout)
    second = json.loads(_cli(*replay).stdout)
    after_two = _replayed_commands(settings, codec, main_starts, channel)
    third = json.loads(_cli(*replay, "--again").stdout)
    after_again = _replayed_commands(settings, codec, main_starts, channel)

    assert [(r["outcome"], r["attempt"]) for r in first] == [("replayed", 7)]
    assert [r["outcome"] for r in second] == ["already replayed"]
    assert [(c["job_id"], c["attempt"]) for c in after_two] == [(job_id, 7)]
    assert after_two[0]["alert"] == commands[1]["alert"]
    # A recorder reading the shared notify.jobs may have recorded the first
    # replay's queued event by now; the next attempt then follows it.
    again_attempt = third[0]["attempt"]
    assert [r["outcome"] for r in third] == ["replayed"]
    assert again_attempt in (7, 8)
    assert [c["attempt"] for c in after_again] == [7, again_attempt]
    events = decoded(codec, "JobEvent", read_since(settings, JOBS_TOPIC, jobs_starts))
    queued = [(e["state"], e["attempt"]) for e in events if e["job_id"] == job_id]
    assert queued == [("queued", 7), ("queued", again_attempt)]
    row = dict_conn.execute(
        "SELECT replay_count, attempt FROM dlq_replays WHERE topic = %s", (topic,)
    ).fetchone()
    assert row == {"replay_count": 2, "attempt": again_attempt}


def test_replay_all_skips_what_does_not_decode(settings, codec, dead_letters):
    topic, channel, commands = dead_letters
    starts = end_offsets(settings, MAIN_TOPIC)

    results = json.loads(
        _cli("dlq", "replay", "webhook", "--topic", topic, "--all", "--json").stdout
    )

    assert [r["outcome"] for r in results] == ["replayed", "replayed", "skipped"]
    replayed = _replayed_commands(settings, codec, starts, channel)
    assert sorted((c["job_id"], c["attempt"]) for c in replayed) == sorted(
        [(commands[0]["job_id"], 4), (commands[1]["job_id"], 7)]
    )


def test_replay_follows_a_later_retry_and_skips_a_job_no_longer_dead(
    settings, codec, dict_conn, dead_letters, unique
):
    topic, channel, commands = dead_letters
    retried, delivered = commands
    _job_row(dict_conn, retried, "dead", attempts=9)
    _job_row(dict_conn, delivered, "delivered", attempts=6)
    starts = end_offsets(settings, MAIN_TOPIC)

    results = json.loads(
        _cli(
            "dlq", "replay", "webhook", "--topic", topic, "--channel", channel, "--json"
        ).stdout
    )

    outcomes = {r["job_id"]: (r["outcome"], r["attempt"], r["detail"]) for r in results}
    assert outcomes[retried["job_id"]] == ("replayed", 10, "")
    assert outcomes[delivered["job_id"]] == ("skipped", None, "job is delivered")
    replayed = _replayed_commands(settings, codec, starts, channel)
    assert [(c["job_id"], c["attempt"]) for c in replayed] == [(retried["job_id"], 10)]


def test_replay_without_a_selection_is_refused(dead_letters):
    topic, _channel, _commands = dead_letters

    result = CliRunner().invoke(app, ["dlq", "replay", "webhook", "--topic", topic])

    assert result.exit_code == 1
    assert "--all" in result.output


def _job_row(conn, command: dict, state: str, attempts: int) -> None:
    alert = command["alert"]
    conn.execute(
        "INSERT INTO notification_jobs (job_id, tenant_id, channel_id, channel_type,"
        " event_id, alert_id, event_kind, severity, state, attempts, state_attempt,"
        " event_occurred_at, created_at, updated_at)"
        " VALUES (%s, %s, %s, 'webhook', %s, %s, %s, %s, %s, %s, %s, %s, now(), now())",
        (
            command["job_id"],
            command["tenant_id"],
            command["channel_id"],
            alert["event_id"],
            alert["alert_id"],
            alert["kind"],
            alert["severity"],
            state,
            attempts,
            attempts,
            alert["occurred_at"],
        ),
    )


def test_a_job_dead_lettered_twice_is_replayed_once_from_its_newest(
    settings, codec, make_topic
):
    topic = make_topic("dlqtwice")
    tenant, channel = str(uuid.uuid4()), str(uuid.uuid4())
    first = make_command(tenant, channel, attempt=6)
    later = {**first, "attempt": 8}
    produce(
        settings,
        topic,
        [
            (channel, codec.encode("DeliveryCommand", c), dead_letter_headers("x", a))
            for c, a in ((first, 6), (later, 8))
        ],
    )
    starts = end_offsets(settings, MAIN_TOPIC)

    results = json.loads(
        _cli("dlq", "replay", "webhook", "--topic", topic, "--all", "--json").stdout
    )

    assert [(r["offset"], r["outcome"], r["attempt"]) for r in results] == [
        (0, "skipped", None),
        (1, "replayed", 9),
    ]
    replayed = _replayed_commands(settings, codec, starts, channel)
    assert [(c["job_id"], c["attempt"]) for c in replayed] == [(first["job_id"], 9)]


def test_two_operators_replaying_at_once_replay_a_dead_letter_once(
    settings, codec, dead_letters
):
    topic, channel, _commands = dead_letters
    letters = [d for d in read_dead_letters(settings, topic, codec) if d.command]
    starts = end_offsets(settings, MAIN_TOPIC)

    def replay_all() -> list[str]:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            replayer = Replayer(conn, make_producer(settings), codec)
            return [str(r.outcome) for r in replayer.run(letters)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = [
            o for f in [pool.submit(replay_all) for _ in "ab"] for o in f.result()
        ]

    assert sorted(outcomes) == ["already replayed"] * 2 + ["replayed"] * 2
    assert len(_replayed_commands(settings, codec, starts, channel)) == 2


def _list_piped(topic: str, columns: str | None) -> str:
    """`dlq list` as a separate process whose output goes to a pipe, not a TTY."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    result = subprocess.run(
        [SWITCHBOARD, "dlq", "list", "webhook", "--topic", topic],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_piped_to_a_file_keeps_each_row_whole(dead_letters):
    topic, channel, commands = dead_letters

    wide = _list_piped(topic, columns=None)
    narrow = _list_piped(topic, columns="80")

    for command in commands:
        whole = [
            line
            for line in wide.splitlines()
            if command["job_id"] in line and channel in line and "HTTP 400" in line
        ]
        assert len(whole) == 1, wide
    assert not any(commands[0]["job_id"] in line for line in narrow.splitlines())


def test_ids_are_checked_and_matched_whatever_their_case(dead_letters):
    topic, channel, _commands = dead_letters

    bad = CliRunner().invoke(
        app, ["dlq", "replay", "webhook", "--topic", topic, "--channel", "not-a-uuid"]
    )
    bad_job = CliRunner().invoke(
        app, ["dlq", "list", "webhook", "--topic", topic, "--job", "42"]
    )
    upper = json.loads(
        _cli(
            "dlq",
            "list",
            "webhook",
            "--topic",
            topic,
            "--channel",
            channel.upper(),
            "--json",
        ).stdout
    )

    assert bad.exit_code == 1
    assert "--channel 'not-a-uuid' is not an id" in bad.output
    assert bad_job.exit_code == 1
    assert "--job '42' is not an id" in bad_job.output
    assert upper["total"] == 2
