"""Fixtures of the deliverer tests: a signature-checking receiver, a harness."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# tests/ is not a package and the project root is not on sys.path under pytest;
# the deliverer tests share helpers as ``tests.deliverer.helpers``.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.receivers.webhook import WebhookReceiver  # noqa: E402
from tests.deliverer.helpers import SIGNING_SECRET, DelivererHarness  # noqa: E402


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
