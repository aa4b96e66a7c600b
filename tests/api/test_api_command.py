"""`switchboard api` serves the API on loopback and publishes the outbox itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from api_support import CHANNELS, WEBHOOK

from services.api.tenants import create_tenant
from switchboard.settings import Settings

SWITCHBOARD = os.path.join(os.path.dirname(sys.executable), "switchboard")
WAIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "switchboard api exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("switchboard api did not start")


@pytest.fixture
def api_server(settings: Settings) -> Iterator[str]:
    """A `switchboard api` process on a free loopback port; yields its base URL."""
    port = _free_port()
    env = os.environ | {"SWITCHBOARD_API_PORT": str(port)}
    process = subprocess.Popen(
        [SWITCHBOARD, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_api_command_serves_and_publishes_changes(
    api_server: str, settings: Settings, conn: psycopg.Connection
) -> None:
    _tenant, key = create_tenant(conn, f"command-{uuid.uuid4().hex}")
    headers = {"Authorization": f"Bearer {key}"}

    ready = httpx.get(f"{api_server}/readyz", timeout=10)
    created = httpx.post(f"{api_server}{CHANNELS}", json=WEBHOOK, headers=headers)

    assert ready.json()["status"] == "ok"
    assert created.status_code == 201, created.text
    key_name = f"channel:{created.json()['id']}"
    deadline = time.monotonic() + WAIT_S
    published = None
    while published is None and time.monotonic() < deadline:
        published = conn.execute(
            "SELECT published_at FROM config_outbox WHERE message_key = %s",
            (key_name,),
        ).fetchone()[0]
        time.sleep(0.1)
    assert published is not None, "the change was never published"
