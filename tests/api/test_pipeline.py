"""A test notification and a retried dead job reach a real receiver through the
real deliverer and come back as delivered jobs through the real recorder.

Runs `switchboard deliverer --type webhook` and `switchboard recorder` as
subprocesses; skipped while the command line has not got them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from api_support import CHANNELS, JOBS, WEBHOOK, TenantKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.relay import OutboxRelay
from services.api.tenants import create_tenant
from switchboard.settings import Settings

WAIT_S = 90.0


def _cli_has(command: str) -> bool:
    from switchboard import cli

    return any(c.name == command for c in cli.app.registered_commands)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A webhook deliverer and a recorder, allowed to reach loopback targets."""
    if not (_cli_has("deliverer") and _cli_has("recorder")):
        pytest.skip(
            "`switchboard deliverer` and `switchboard recorder` do not exist yet"
        )
    env = os.environ | {"SWITCHBOARD_ALLOW_PRIVATE_TARGETS": "true"}
    logs = tmp_path_factory.mktemp("pipeline")
    command = [str(Path(sys.executable).parent / "switchboard")]
    processes = []
    for name, args in (("deliverer", ["--type", "webhook"]), ("recorder", [])):
        out = (logs / f"{name}.log").open("w")
        processes.append(
            subprocess.Popen(command + [name, *args], env=env, stdout=out, stderr=out)
        )
    yield
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP receiver answering 204; yields its URL and what it got."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


@pytest.fixture(scope="module")
def private_app(settings: Settings) -> Iterator[FastAPI]:
    """The API app allowing loopback targets, as an operator may configure it."""
    app = create_app(settings.model_copy(update={"allow_private_targets": True}))
    with TestClient(app):
        yield app


@pytest.fixture
def private_tenant(private_app: FastAPI, settings: Settings) -> TenantKey:
    """A fresh tenant of the loopback-allowing app."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id, key = create_tenant(conn, f"pipeline-{uuid.uuid4().hex}")
    client = TestClient(private_app, headers={"Authorization": f"Bearer {key}"})
    return TenantKey(tenant_id, key, client)


def _job_state(tenant: TenantKey, job_id: str) -> str | None:
    response = tenant.client.get(f"{JOBS}/{job_id}")
    return response.json()["state"] if response.status_code == 200 else None


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_a_test_notification_is_delivered_and_recorded(
    pipeline: None,
    receiver: tuple[str, list[dict]],
    private_tenant: TenantKey,
    relays: Callable[[], OutboxRelay],
) -> None:
    url, received = receiver
    relays()
    body = json.loads(json.dumps(WEBHOOK))
    body["config"]["url"] = url
    channel = private_tenant.create_channel(body)

    queued = private_tenant.client.post(f"{CHANNELS}/{channel['id']}/test")
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job_id"]

    _wait_for(lambda: _job_state(private_tenant, job_id) == "delivered", "delivery")
    ids = [r["headers"].get("webhook-id") for r in received]
    assert job_id in ids


def _insert_dead_job(
    conn: psycopg.Connection, tenant: TenantKey, channel_id: str
) -> str:
    """A dead job after one refused attempt, as the recorder writes it."""
    job_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    alert = {
        "event_id": event_id,
        "tenant_id": str(tenant.id),
        "alert_id": "a-dead",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": None,
        "device_id": "core-1",
        "summary": "Link down",
        "details": None,
        "labels": {},
        "occurred_at": "2026-12-03T12:00:00+00:00",
        "source": "tests",
    }
    conn.execute(
        "INSERT INTO notification_jobs (job_id, tenant_id, channel_id, channel_type,"
        " event_id, alert_id, event_kind, severity, state, attempts, state_attempt,"
        " state_rank, event_occurred_at, created_at, updated_at, alert)"
        " VALUES (%s, %s, %s, 'webhook', %s, 'a-dead', 'OPEN', 'HIGH', 'dead', 1, 1,"
        " 2, now(), now(), now(), %s)",
        (job_id, tenant.id, channel_id, event_id, json.dumps(alert)),
    )
    return job_id


def test_a_retried_dead_job_is_delivered_as_its_next_attempt(
    pipeline: None,
    receiver: tuple[str, list[dict]],
    private_tenant: TenantKey,
    relays: Callable[[], OutboxRelay],
    conn: psycopg.Connection,
) -> None:
    url, received = receiver
    relays()
    body = json.loads(json.dumps(WEBHOOK))
    body["config"]["url"] = url
    channel = private_tenant.create_channel(body)
    _wait_for(
        lambda: conn.execute(
            "SELECT bool_and(published_at IS NOT NULL) FROM config_outbox"
            " WHERE message_key = %s",
            (f"channel:{channel['id']}",),
        ).fetchone()[0],
        "the channel on notify.config",
    )
    job_id = _insert_dead_job(conn, private_tenant, channel["id"])

    retried = private_tenant.client.post(f"{JOBS}/{job_id}/retry")
    assert retried.json() == {"job_id": job_id, "attempt": 2}

    _wait_for(lambda: _job_state(private_tenant, job_id) == "delivered", "delivery")
    job = private_tenant.client.get(f"{JOBS}/{job_id}").json()
    assert job["attempts"] == 2
    assert job_id in [r["headers"].get("webhook-id") for r in received]
