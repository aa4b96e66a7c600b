"""Fixtures of the deliverer tests: a signature-checking receiver, a harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.receivers.webhook import WebhookReceiver
from tests.deliverer.helpers import SIGNING_SECRET, DelivererHarness


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A local webhook receiver verifying signatures with the test secret."""
    with WebhookReceiver(SIGNING_SECRET) as running:
        yield running


@pytest.fixture
def harness(settings, make_topic, unique) -> Iterator:
    """Build (and afterwards stop) in-process deliverers over private topics."""
    started: list[DelivererHarness] = []

    def build(**options) -> DelivererHarness:
        harness = DelivererHarness(settings, make_topic, unique, **options)
        started.append(harness)
        return harness.start()

    yield build
    for harness in started:
        harness.stop()
