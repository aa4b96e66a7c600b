"""Fixtures for the PagerDuty channel: a local Events API v2 and the sender.

The receiver validates every event against PagerDuty's published OpenAPI
document (the enqueue request body, with ``#/components/…`` references
resolved against the whole document), and the ``pagerduty`` fixture validates
the event of every request after the test, also those answered with a
programmed failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.pagerduty.config import Config, Secrets
from services.deliverer.channels.pagerduty.sender import Sender
from services.receivers.pagerduty import PagerDutyReceiver
from tests.deliverer.channels.vendor_channels import (
    LOOPBACK_SETTINGS,
    make_command,
    pagerduty_event_validator,
    resolved,
)


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyReceiver]:
    """An Events API v2 endpoint on loopback; accepted events validated after."""
    validator = pagerduty_event_validator()
    with PagerDutyReceiver(event_validator=validator) as receiver:
        yield receiver
    # Every request, also those answered with a programmed failure.
    for exchange in receiver.exchanges:
        validator.validate(exchange.request.json())


@pytest_asyncio.fixture(loop_scope="function")
async def sender() -> AsyncIterator[Sender]:
    """The PagerDuty sender, allowed to reach loopback, closed after the test."""
    sender = Sender(LOOPBACK_SETTINGS)
    yield sender
    await sender.close()


@pytest.fixture
def job(
    pagerduty: PagerDutyReceiver,
) -> Callable[..., tuple[dict[str, Any], ResolvedChannel]]:
    """Build (command, channel) for an alert; keyword args override alert fields."""

    def build(
        template: str | None = None, routing_key: str | None = None, **alert: Any
    ) -> tuple[dict[str, Any], ResolvedChannel]:
        command = make_command("pagerduty", **alert)
        config = Config(events_url=pagerduty.events_url, template=template, timeout_s=2)
        secrets = Secrets(routing_key=routing_key or pagerduty.routing_key)
        return command, resolved(command, config, secrets)

    return build
