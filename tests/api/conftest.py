"""Fixtures of the API tests: the app over the real stack, tenants with keys."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from api_support import TenantKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.relay import OutboxRelay
from services.api.tenants import create_tenant
from switchboard.settings import Settings


@pytest.fixture(scope="session")
def api_app(settings: Settings) -> Iterator[FastAPI]:
    """The API app with its resources open (no in-process relay)."""
    app = create_app(settings)
    with TestClient(app):
        yield app


def _tenant(app: FastAPI, database_url: str) -> TenantKey:
    with psycopg.connect(database_url, autocommit=True) as conn:
        tenant_id, key = create_tenant(conn, f"test-{uuid.uuid4().hex}")
    client = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    return TenantKey(tenant_id, key, client)


@pytest.fixture
def tenant(api_app: FastAPI, settings: Settings) -> TenantKey:
    """A fresh tenant with one key."""
    return _tenant(api_app, settings.database_url)


@pytest.fixture
def other_tenant(api_app: FastAPI, settings: Settings) -> TenantKey:
    """A second fresh tenant, to show isolation."""
    return _tenant(api_app, settings.database_url)


@pytest.fixture
def anonymous(api_app: FastAPI) -> TestClient:
    """A client without credentials."""
    return TestClient(api_app)


@pytest.fixture
def relays(settings: Settings) -> Iterator[Callable[[], OutboxRelay]]:
    """Start relays in threads; all are stopped after the test."""
    started: list[tuple[OutboxRelay, threading.Thread]] = []

    def start() -> OutboxRelay:
        relay = OutboxRelay(settings)
        started.append((relay, relay.start_thread()))
        return relay

    yield start
    for relay, thread in started:
        relay.stop()
        thread.join(timeout=15)
