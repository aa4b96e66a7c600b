"""Recorder throughput: job events applied to the job tables per second.

Publishes a realistic mix (queued, retrying, delivered; about 2.5 events and 1.5
log rows per job) to a private topic, records it into a scratch database, and
prints events/s and rows/s (job upserts plus log inserts). Bounded: by default
20 000 events, dropped with the database at the end.

Run: ``.venv/bin/python bench/recorder_rows.py [--jobs 8000]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
from confluent_kafka.admin import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.recorder.service import Recorder  # noqa: E402
from switchboard.codec import default_codec  # noqa: E402
from switchboard.db import migrate  # noqa: E402
from switchboard.domain import JobState  # noqa: E402
from switchboard.jobs import job_event, utc_now  # noqa: E402
from switchboard.kafka import make_admin, make_producer  # noqa: E402
from switchboard.settings import Settings  # noqa: E402
from tests.deliverer.helpers import make_command  # noqa: E402


def job_history(command: dict, retried: bool) -> list[dict]:
    """queued, maybe one retrying, then delivered."""
    start = utc_now()
    events = [job_event(command, JobState.QUEUED, 1, occurred_at=start)]
    attempt = 1
    if retried:
        events.append(
            job_event(
                command,
                JobState.RETRYING,
                1,
                occurred_at=start,
                status_code=503,
                reason="http_5xx",
                error="HTTP 503",
                duration_ms=20,
                next_attempt_at=start + timedelta(seconds=10),
            )
        )
        attempt = 2
    events.append(
        job_event(
            command,
            JobState.DELIVERED,
            attempt,
            occurred_at=start,
            status_code=200,
            reason="delivered",
            duration_ms=15,
        )
    )
    return events


def publish(settings: Settings, topic: str, jobs: int) -> tuple[int, int]:
    """Publish the histories of ``jobs`` jobs; return (events, rows they make)."""
    codec = default_codec()
    producer = make_producer(settings)
    tenant, channel = str(uuid.uuid4()), str(uuid.uuid4())
    events = rows = 0
    for index in range(jobs):
        history = job_history(make_command(tenant, channel), retried=index % 2 == 0)
        for event in history:
            producer.produce(topic, codec.encode("JobEvent", event), event["job_id"])
            producer.poll(0)
        events += len(history)
        rows += len(history) + len(history) - 1
    producer.flush(60)
    return events, rows


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8000)
    args = parser.parse_args()
    settings = Settings()
    suffix = uuid.uuid4().hex[:8]
    topic, database = f"bench.jobs.{suffix}", f"bench_{suffix}"
    admin = make_admin(settings)
    admin.create_topics([NewTopic(topic, num_partitions=3)])[topic].result(30)
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    database_url = settings.database_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        migrate(database_url)
        events, rows = publish(settings, topic, args.jobs)
        recorder = Recorder(
            settings, topic=topic, group=f"bench.{suffix}", database_url=database_url
        )
        # Timing starts once the first batch is in (group join excluded), so
        # that batch is not counted either.
        first = 0
        while not first:
            first = recorder.step()
        started, consumed = time.perf_counter(), first
        while consumed < events:
            consumed += recorder.step()
        elapsed = time.perf_counter() - started
        recorder.close()
    finally:
        admin.delete_topics([topic])
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    share = (events - first) / events
    print(f"events:   {events} ({rows} row writes)")
    print(
        f"recorder: {events * share / elapsed:8.0f} events/s, "
        f"{rows * share / elapsed:8.0f} rows/s"
    )


if __name__ == "__main__":
    main()
