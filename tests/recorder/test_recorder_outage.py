"""The recorder waits out a PostgreSQL outage longer than its group allows a poll.

notify.jobs keeps the events, so nothing is lost while the database is away;
the recorder must neither exit nor leave its group (which would hand its
partitions to nobody), and must record everything once the server is back.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from services.recorder.service import Recorder
from switchboard.stack import PostgresComponent
from tests.recorder.test_recorder import _history, _publish

# Longer than the consumer may go without polling, and longer than the
# recorder's first few retries together.
OUTAGE_S = 20.0
CONSUMER_OPTIONS = {"session.timeout.ms": 6000, "max.poll.interval.ms": 7000}


def _members(admin: AdminClient, group: str) -> list[str]:
    description = admin.describe_consumer_groups([group])[group].result(10)
    return sorted(member.member_id for member in description.members)


def _recorded(database_url: str, job_ids: list[str]) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notification_jobs WHERE job_id = ANY(%s::uuid[])",
            (job_ids,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_recorded(database_url: str, job_ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _recorded(database_url, job_ids) < len(job_ids):
        assert time.monotonic() < deadline, "events were not recorded in time"
        time.sleep(0.5)


def test_a_long_outage_is_waited_out_in_the_group_and_nothing_is_lost(
    settings,
    codec,
    admin: AdminClient,
    make_topic,
    own_postgres: PostgresComponent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database_url = own_postgres.settings.database_url
    topic = make_topic("recorder-outage")
    group = f"test.recorder.{uuid.uuid4()}"
    recorder = Recorder(
        settings,
        topic=topic,
        group=group,
        database_url=database_url,
        consumer_options=CONSUMER_OPTIONS,
    )
    stopping = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            recorder.run(stopping)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        before, before_commands = _history(str(uuid.uuid4()))
        _publish(settings, codec, topic, before)
        _wait_recorded(database_url, [c["job_id"] for c in before_commands], 60)
        members = _members(admin, group)

        caplog.set_level(logging.INFO)
        own_postgres.down()
        during, during_commands = _history(str(uuid.uuid4()))
        _publish(settings, codec, topic, during)
        time.sleep(OUTAGE_S)
        assert thread.is_alive() and not failures
        own_postgres.up()

        _wait_recorded(database_url, [c["job_id"] for c in during_commands], 90)
        assert _members(admin, group) == members
    finally:
        stopping.set()
        thread.join(30)
        recorder.close()

    assert not failures
    messages = [record.getMessage() for record in caplog.records]
    assert (
        messages.count("database unavailable; recorder holds its batch and retries")
        == 1
    )
    assert messages.count("database available again; recorder resumed") == 1
