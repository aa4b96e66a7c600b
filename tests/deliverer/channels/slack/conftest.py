"""Fixtures for the Slack channel: a local Slack webhook and the sender."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.slack.config import Config, Secrets
from services.deliverer.channels.slack.sender import Sender
from services.receivers.slack import SlackReceiver
from tests.deliverer.channels.vendor_channels import (
    LOOPBACK_SETTINGS,
    make_command,
    resolved,
)


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    """A Slack incoming webhook on loopback."""
    with SlackReceiver() as receiver:
        yield receiver


@pytest_asyncio.fixture(loop_scope="function")
async def sender() -> AsyncIterator[Sender]:
    """The Slack sender, allowed to reach loopback, closed after the test."""
    sender = Sender(LOOPBACK_SETTINGS)
    yield sender
    await sender.close()


@pytest.fixture
def job(
    slack: SlackReceiver,
) -> Callable[..., tuple[dict[str, Any], ResolvedChannel]]:
    """Build (command, channel) for an alert; keyword args override alert fields."""

    def build(
        template: str | None = None, url: str | None = None, **alert: Any
    ) -> tuple[dict[str, Any], ResolvedChannel]:
        command = make_command("slack", **alert)
        config = Config(template=template, timeout_s=2)
        secrets = Secrets(webhook_url=url or slack.webhook_url)
        return command, resolved(command, config, secrets)

    return build
