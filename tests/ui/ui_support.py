"""Helpers of the web page's browser tests: signing in, screenshots, API calls."""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from playwright.sync_api import Page

from switchboard.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "ui"
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 740}
# Receiver paths: anything under /fail is refused the way a broken target would.
FAIL_PATH = "/fail"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Receiver:
    """A local webhook target recording what it receives."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Tenant:
    """A tenant created for one test, with its API key."""

    id: uuid.UUID
    key: str
    name: str


def sign_in(page: Page, key: str) -> None:
    """Sign in through the form."""
    page.goto("/ui/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/channels")


def shoot(page: Page, name: str) -> None:
    """Save the page as shown on a desktop and on a phone-sized screen."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(NARROW)
    page.screenshot(path=SCREENSHOTS / f"{name}-narrow.png", full_page=True)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.set_viewport_size(DESKTOP)
    assert overflow <= 0, f"{name} scrolls sideways on a narrow screen"


def api(server: str, key: str, method: str, path: str, body: Any = None) -> Any:
    """Call the running server's API directly, as a client would."""
    import httpx

    response = httpx.request(
        method,
        server + path,
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code < 400, response.text
    return response.json() if response.content else None


def insert_dead_job(conn: psycopg.Connection, tenant: Tenant, channel_id: str) -> str:
    """A dead job with one refused attempt, written as the recorder would."""
    job_id = str(uuid.uuid4())
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": str(tenant.id),
        "alert_id": f"alert-{job_id[:8]}",
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
        " state_rank, last_status_code, last_reason, last_error, event_occurred_at,"
        " created_at, updated_at, alert) VALUES (%s, %s, %s, 'webhook', %s, %s,"
        " 'OPEN', 'HIGH', 'dead', 1, 1, 9, 400, 'http_4xx', 'HTTP 400',"
        " now(), now(), now(), %s)",
        (
            job_id,
            tenant.id,
            channel_id,
            alert["event_id"],
            alert["alert_id"],
            json.dumps(alert),
        ),
    )
    conn.execute(
        "INSERT INTO notification_log (job_id, attempt, state, status_code, reason,"
        " error, duration_ms, occurred_at) VALUES (%s, 1, 'dead', 400, 'http_4xx',"
        " 'HTTP 400', 12, now())",
        (job_id,),
    )
    return job_id
