"""Fixtures for the SNMP channel: snmptrapd configured for v2c and v3."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.snmp.config import Config, Secrets
from services.deliverer.channels.snmp.sender import Sender, engine_id_for
from services.receivers.snmp import TrapReceiver, V3User
from switchboard.jobs import new_command
from switchboard.settings import Settings
from tests.deliverer.channels.vendor_channels import LOOPBACK_SETTINGS

CHANNEL_ID = "channel-snmp"
COMMUNITY = "n0c-community-7f3a"
AUTH_KEY, PRIV_KEY = "auth-key-5c1e9d", "priv-key-b7a204"
INFORM_USER = "sb-inform"
V3_USERS = {
    # user name: (auth protocol for snmptrapd, for the channel; privacy likewise)
    "sb-sha-aes": ("SHA", "SHA", "AES", "AES"),
    "sb-sha256-aes256": ("SHA-256", "SHA256", "AES256", "AES256"),
    "sb-sha-aes256": ("SHA", "SHA", "AES256", "AES256"),
}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[TrapReceiver]:
    """snmptrapd accepting COMMUNITY (v2c) and the V3_USERS at our engine id."""
    engine_id = engine_id_for(CHANNEL_ID)
    users = tuple(
        V3User(name, auth, AUTH_KEY, priv, PRIV_KEY, engine_id)
        for name, (auth, _, priv, _) in V3_USERS.items()
    )
    # For INFORMs the receiver is authoritative: the user is under its own id.
    users += (V3User(INFORM_USER, "SHA", AUTH_KEY, "AES", PRIV_KEY),)
    receiver = TrapReceiver(
        tmp_path / "snmptrapd", communities=(COMMUNITY,), users=users
    )
    receiver.start()
    yield receiver
    receiver.stop()


@pytest_asyncio.fixture(loop_scope="function")
async def sender() -> AsyncIterator[Sender]:
    """The SNMP sender, allowed to reach loopback, closed after the test."""
    sender = Sender(LOOPBACK_SETTINGS)
    yield sender
    await sender.close()


@pytest.fixture
def make_command() -> Callable[..., dict[str, Any]]:
    """Build a DeliveryCommand for an alert with the given field overrides."""

    def build(attempt: int = 1, **fields: Any) -> dict[str, Any]:
        alert = {
            "event_id": str(uuid.uuid4()),
            "tenant_id": "tenant-noc",
            "alert_id": f"alert-{uuid.uuid4().hex[:8]}",
            "kind": "OPEN",
            "severity": "CRITICAL",
            "alert_type": "link_down",
            "site_id": "site-1",
            "device_id": "router-7",
            "summary": "Link down on router-7",
            "details": "ge-0/0/1 lost carrier",
            "labels": {"region": "eu-west", "ip": "192.0.2.17"},
            "occurred_at": datetime(2026, 3, 1, 12, 30, 45, 600_000, tzinfo=UTC),
            "source": "monitoring",
        }
        alert.update(fields)
        command = new_command(alert, CHANNEL_ID, "snmp", "rule-1")
        command["attempt"] = attempt
        return command

    return build


@pytest.fixture
def make_channel() -> Callable[..., ResolvedChannel]:
    """Build a resolved SNMP channel to 127.0.0.1:``port``."""

    def build(
        port: int, secrets: dict[str, str] | None = None, **config: Any
    ) -> ResolvedChannel:
        values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "timeout_s": 3}
        values.update(config)
        return ResolvedChannel(
            id=CHANNEL_ID,
            tenant_id="tenant-noc",
            name="NOC traps",
            channel_type="snmp",
            enabled=True,
            config=Config.model_validate(values),
            secrets=Secrets.model_validate(
                {"community": COMMUNITY} if secrets is None else secrets
            ),
        )

    return build


@pytest.fixture(scope="session")
def deliverer(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """The session's real ``switchboard deliverer --type email,snmp,mqtt``."""
    from tests.deliverer.channels.deliverer_process import shared_deliverer

    process = shared_deliverer(tmp_path_factory.getbasetemp() / "deliverer")
    yield process
    process.stop()
