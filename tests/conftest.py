"""Shared fixtures: one real stack per test session, unique names per test.

The stack is the local one (`switchboard stack up`, idempotent) unless
SWITCHBOARD_TEST_BACKEND=testcontainers, which starts Kafka, PostgreSQL and
Mosquitto in Docker instead (see tests/containers.py).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from switchboard import db
from switchboard import stack as local_stack
from switchboard.codec import Codec, default_codec
from switchboard.kafka import make_admin
from switchboard.settings import Settings
from switchboard.topics import ensure_topics, topic_specs


def _start_backend() -> Settings:
    if os.environ.get("SWITCHBOARD_TEST_BACKEND") == "testcontainers":
        from tests.containers import start_containers

        start_containers()
        return Settings()
    settings = Settings()
    local_stack.up(settings)
    return settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings for the shared stack, with the stack up, migrated and topics created."""
    settings = _start_backend()
    db.migrate(settings.database_url)
    reports = ensure_topics(make_admin(settings), topic_specs(settings))
    failed = [r for r in reports if r.action == "failed"]
    assert not failed, failed
    return settings


@pytest.fixture(scope="session")
def codec() -> Codec:
    """The codec over schemas/."""
    return default_codec()


@pytest.fixture(scope="session")
def admin(settings: Settings) -> AdminClient:
    """An admin client for the shared broker."""
    return make_admin(settings)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names a test creates (topics, tenants, groups)."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def make_topic(admin: AdminClient, unique: str) -> Iterator:
    """Create fresh topics for one test; deleted afterwards."""
    created: list[str] = []

    def create(prefix: str, partitions: int = 1, config: dict | None = None) -> str:
        name = f"test.{prefix}.{unique}.{len(created)}"
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, config=config or {})]
        )
        futures[name].result(30)
        created.append(name)
        return name

    yield create
    if created:
        for future in admin.delete_topics(created, operation_timeout=30).values():
            future.result(30)


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the migrated application database."""
    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def scratch_database(settings: Settings, unique: str) -> Iterator[str]:
    """The URL of a new empty database, dropped after the test."""
    name = f"scratch_{unique}"
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield settings.database_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[local_stack.PostgresComponent]:
    """A migrated PostgreSQL server of this test's own, which the test may stop."""
    url = f"postgresql://switchboard:outage@127.0.0.1:{_free_port()}/switchboard"
    server = local_stack.PostgresComponent(
        Settings(state_dir=tmp_path, database_url=url)
    )
    server.up()
    try:
        db.migrate(url)
        yield server
    finally:
        server.down()
