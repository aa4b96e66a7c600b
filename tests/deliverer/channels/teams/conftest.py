"""Fixtures for the Teams channel: a local Workflows webhook and the sender.

The receiver validates every card it handles against Microsoft's published
Adaptive Card 1.4 schema, and the ``teams`` fixture validates the card of every
request after the test (also those answered with a programmed failure), so no
card a test sent escapes the schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.teams.config import Config, Secrets
from services.deliverer.channels.teams.sender import Sender
from services.receivers.teams import TeamsReceiver
from tests.deliverer.channels.vendor_channels import (
    LOOPBACK_SETTINGS,
    card_validator,
    make_command,
    resolved,
)


@pytest.fixture
def teams() -> Iterator[TeamsReceiver]:
    """A Workflows webhook on loopback; its accepted cards are validated after."""
    validator = card_validator()
    with TeamsReceiver(card_validator=validator) as receiver:
        yield receiver
    # Every request, also those answered with a programmed failure.
    for exchange in receiver.exchanges:
        for attachment in exchange.request.json()["attachments"]:
            validator.validate(attachment["content"])


@pytest_asyncio.fixture(loop_scope="function")
async def sender() -> AsyncIterator[Sender]:
    """The Teams sender, allowed to reach loopback, closed after the test."""
    sender = Sender(LOOPBACK_SETTINGS)
    yield sender
    await sender.close()


@pytest.fixture
def job(
    teams: TeamsReceiver,
) -> Callable[..., tuple[dict[str, Any], ResolvedChannel]]:
    """Build (command, channel) for an alert; keyword args override alert fields."""

    def build(
        template: str | None = None, url: str | None = None, **alert: Any
    ) -> tuple[dict[str, Any], ResolvedChannel]:
        command = make_command("teams", **alert)
        config = Config(template=template, timeout_s=2)
        secrets = Secrets(webhook_url=url or teams.webhook_url)
        return command, resolved(command, config, secrets)

    return build
