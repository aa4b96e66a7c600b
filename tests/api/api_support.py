"""Helpers shared by the API tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi.testclient import TestClient

CHANNELS = "/customer/notification-channels"
RULES = "/customer/notification-routing-rules"
JOBS = "/customer/notification-jobs"

WEBHOOK = {
    "channel_type": "webhook",
    "name": "NOC webhook",
    "config": {"url": "https://hooks.example.com/switchboard"},
    "secrets": {"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
}


@dataclass
class TenantKey:
    """A tenant created for one test and a client authenticated as it."""

    id: uuid.UUID
    key: str
    client: TestClient

    def create_channel(self, body: dict | None = None) -> dict:
        """Create a channel (the webhook example by default) and return it."""
        response = self.client.post(CHANNELS, json=body or WEBHOOK)
        assert response.status_code == 201, response.text
        return response.json()
