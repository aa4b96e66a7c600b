"""A demo tenant and a small client of its part of the HTTP API."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import psycopg

from services.api.tenants import create_tenant

CHANNELS = "/customer/notification-channels"
RULES = "/customer/notification-routing-rules"
JOBS = "/customer/notification-jobs"
PAGE = 200
CONFIG_WAIT_S = 30.0


def new_tenant(database_url: str, name: str) -> tuple[str, str]:
    """A new tenant and its API key."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tenant_id, key = create_tenant(conn, name)
    return str(tenant_id), key


class TenantApi:
    """The customer API as one tenant sees it."""

    def __init__(self, base_url: str, key: str) -> None:
        """Authenticate every request with ``key``."""
        self.key = key
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def create_channel(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a channel; raises with the API's answer if refused."""
        return _created(self.client.post(CHANNELS, json=body))

    def create_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a routing rule; raises with the API's answer if refused."""
        return _created(self.client.post(RULES, json=body))

    def delete_channel(self, channel_id: str) -> None:
        """Delete a channel and its rules; raises with the API's answer if refused."""
        _deleted(self.client.delete(f"{CHANNELS}/{channel_id}"))

    def jobs(self, **filters: Any) -> list[dict[str, Any]]:
        """Every job of the tenant (matching ``filters``), all pages."""
        found: list[dict[str, Any]] = []
        params = {"limit": PAGE, **filters}
        while True:
            page = self.client.get(JOBS, params=params)
            page.raise_for_status()
            document = page.json()
            found += document["items"]
            if not document.get("next_cursor"):
                return found
            params["cursor"] = document["next_cursor"]

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job with its attempts, or None while it is not recorded."""
        response = self.client.get(f"{JOBS}/{job_id}")
        return response.json() if response.status_code == 200 else None

    def retry(self, job_id: str) -> dict[str, Any]:
        """Retry a dead job."""
        response = self.client.post(f"{JOBS}/{job_id}/retry")
        response.raise_for_status()
        return response.json()


def _created(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 201:
        raise RuntimeError(f"the API refused: {response.status_code} {response.text}")
    return response.json()


def _deleted(response: httpx.Response) -> None:
    if response.status_code != 204:
        raise RuntimeError(f"the API refused: {response.status_code} {response.text}")


def wait_config_published(database_url: str, keys: list[str]) -> None:
    """Wait until the outbox relay published every ``keys`` change to notify.config.

    Reading the outbox is the one way to know the relay has done its part; the
    configuration itself was written through the API.
    """
    deadline = time.monotonic() + CONFIG_WAIT_S
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            pending = conn.execute(
                "SELECT count(*) FROM config_outbox"
                " WHERE message_key = ANY(%s) AND published_at IS NULL",
                (keys,),
            ).fetchone()[0]
            if pending == 0:
                return
            time.sleep(0.2)
    raise RuntimeError("the outbox relay did not publish the configuration")


def config_keys(
    channels: list[dict[str, Any]], rules: list[dict[str, Any]]
) -> list[str]:
    """The notify.config keys of ``channels`` and ``rules``."""
    return [f"channel:{c['id']}" for c in channels] + [f"rule:{r['id']}" for r in rules]


def unique_name(prefix: str) -> str:
    """A tenant name nobody else uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
