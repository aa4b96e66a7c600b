"""Fixtures for the MQTT channel: the shared broker, a private one, a recorder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.mqtt.config import Config, Secrets
from services.deliverer.channels.mqtt.sender import Sender
from services.receivers.mqtt import MosquittoBroker
from services.receivers.smtp import LocalCertificate, make_local_certificate
from switchboard.jobs import new_command
from switchboard.settings import Settings
from tests.deliverer.channels.vendor_channels import LOOPBACK_SETTINGS


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> LocalCertificate:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    return make_local_certificate(Path(tmp_path_factory.mktemp("mqtt-cert")))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A mosquitto of this test's own, anonymous, on a free port."""
    broker = MosquittoBroker(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest_asyncio.fixture(loop_scope="function")
async def sender() -> AsyncIterator[Sender]:
    """The MQTT sender, allowed to reach loopback, closed after the test."""
    sender = Sender(LOOPBACK_SETTINGS)
    yield sender
    await sender.close()


@pytest.fixture
def tenant() -> str:
    """A tenant id unique to the test, so topics on the shared broker never mix."""
    return f"tenant-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_command(tenant: str) -> Callable[..., dict[str, Any]]:
    """Build a DeliveryCommand for an alert with the given field overrides."""

    def build(attempt: int = 1, **fields: Any) -> dict[str, Any]:
        alert = {
            "event_id": str(uuid.uuid4()),
            "tenant_id": tenant,
            "alert_id": f"alert-{uuid.uuid4().hex[:8]}",
            "kind": "OPEN",
            "severity": "HIGH",
            "alert_type": "link_down",
            "site_id": "site-1",
            "device_id": "router-7",
            "summary": "Link down on router-7 – Übertragung gestört",
            "details": None,
            "labels": {"region": "eu-west"},
            "occurred_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
            "source": "monitoring",
        }
        alert.update(fields)
        command = new_command(alert, "channel-mqtt", "mqtt", "rule-1")
        command["attempt"] = attempt
        return command

    return build


@pytest.fixture
def make_channel() -> Callable[..., ResolvedChannel]:
    """Build a resolved MQTT channel to 127.0.0.1:``port``."""

    def build(port: int, password: str | None = None, **config: Any) -> ResolvedChannel:
        values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "timeout_s": 5}
        values.update(config)
        return ResolvedChannel(
            id="channel-mqtt",
            tenant_id="tenant-mqtt",
            name="Broker",
            channel_type="mqtt",
            enabled=True,
            config=Config.model_validate(values),
            secrets=Secrets(password=password),
        )

    return build


@pytest.fixture(scope="session")
def deliverer(settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """The session's real ``switchboard deliverer --type email,snmp,mqtt``."""
    from tests.deliverer.channels.deliverer_process import shared_deliverer

    process = shared_deliverer(tmp_path_factory.getbasetemp() / "deliverer")
    yield process
    process.stop()
