"""Fixtures for the PagerDuty channel: a local Events API v2 and the sender.

The receiver validates every event against PagerDuty's published OpenAPI
document (the enqueue request body, with ``#/components/…`` references
resolved against the whole document), and the ``pagerduty`` fixture validates
every accepted event once more after the test.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import jsonschema
import pytest
import pytest_asyncio
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.pagerduty.config import Config, Secrets
from services.deliverer.channels.pagerduty.sender import Sender
from services.receivers.pagerduty import PagerDutyReceiver
from switchboard.settings import PROJECT_ROOT
from tests.deliverer.channels.vendor_channels import (
    LOOPBACK_SETTINGS,
    make_command,
    resolved,
)

OPENAPI_PATH = PROJECT_ROOT.parent / "shared/vendor/pagerduty-events-v2.json"
OPENAPI_URI = "urn:pagerduty:events-v2:openapi"
BODY_POINTER = "/paths/~1enqueue/post/requestBody/content/application~1json/schema"


@pytest.fixture(scope="session")
def event_validator() -> jsonschema.Draft7Validator:
    """The enqueue body schema, its references resolved in the whole document."""
    document = json.loads(OPENAPI_PATH.read_text())
    resource = Resource.from_contents(document, default_specification=DRAFT7)
    registry = Registry().with_resource(OPENAPI_URI, resource)
    return jsonschema.Draft7Validator(
        {"$ref": f"{OPENAPI_URI}#{BODY_POINTER}"}, registry=registry
    )


@pytest.fixture
def pagerduty(
    event_validator: jsonschema.Draft7Validator,
) -> Iterator[PagerDutyReceiver]:
    """An Events API v2 endpoint on loopback; accepted events validated after."""
    with PagerDutyReceiver(event_validator=event_validator) as receiver:
        yield receiver
    for event in receiver.accepted:
        event_validator.validate(event)


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
