"""Fixtures for the e-mail channel: a real aiosmtpd server and a test CA."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.email.config import Config, Secrets
from services.deliverer.channels.email.sender import Sender
from services.receivers.smtp import (
    LocalCertificate,
    SmtpReceiver,
    make_local_certificate,
)
from switchboard.jobs import new_command
from switchboard.settings import Settings
from tests.deliverer.channels.vendor_channels import LOOPBACK_SETTINGS


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificate:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    return make_local_certificate(Path(tmp_path_factory.mktemp("smtp-cert")))


@pytest.fixture
def smtp_server() -> Iterator[SmtpReceiver]:
    """A plain SMTP server without authentication."""
    server = SmtpReceiver().start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="function")
async def sender() -> AsyncIterator[Sender]:
    """The e-mail sender, allowed to reach loopback, closed after the test."""
    sender = Sender(LOOPBACK_SETTINGS)
    yield sender
    await sender.close()


def make_alert(**fields: Any) -> dict[str, Any]:
    """An AlertEvent as the codec decodes it, with ``fields`` overriding."""
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "tenant-mail",
        "alert_id": f"alert-{uuid.uuid4().hex[:8]}",
        "kind": "OPEN",
        "severity": "CRITICAL",
        "alert_type": "link_down",
        "site_id": "site-1",
        "device_id": "router-7",
        "summary": "Link down on router-7",
        "details": "ge-0/0/1 lost carrier",
        "labels": {"region": "eu-west"},
        "occurred_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "source": "monitoring",
    }
    alert.update(fields)
    return alert


@pytest.fixture
def make_command() -> Callable[..., dict[str, Any]]:
    """Build a DeliveryCommand for an alert with the given field overrides."""

    def build(attempt: int = 1, **fields: Any) -> dict[str, Any]:
        command = new_command(make_alert(**fields), "channel-mail", "email", "rule-1")
        command["attempt"] = attempt
        return command

    return build


@pytest.fixture
def make_channel() -> Callable[..., ResolvedChannel]:
    """Build a resolved e-mail channel to 127.0.0.1:``port``."""
    return _channel


def _channel(port: int, password: str | None = None, **config: Any) -> ResolvedChannel:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "alerts@example.com",
        "to": ["noc@example.net"],
    }
    values.update(config)
    return ResolvedChannel(
        id="channel-mail",
        tenant_id="tenant-mail",
        name="NOC mail",
        channel_type="email",
        enabled=True,
        config=Config.model_validate(values),
        secrets=Secrets(password=password),
    )


@pytest.fixture(scope="session")
def deliverer(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """The session's real ``switchboard deliverer --type email,snmp,mqtt``."""
    from tests.deliverer.channels.deliverer_process import shared_deliverer

    process = shared_deliverer(tmp_path_factory.getbasetemp() / "deliverer")
    yield process
    process.stop()
