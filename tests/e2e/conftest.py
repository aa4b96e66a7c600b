"""Fixtures of the end-to-end tests: the whole pipeline as separate processes.

One pipeline (API, outbox relay, router, one deliverer for all seven types,
recorder) runs for the session on the shared stack, with short retry tiers.
These processes join the real consumer groups, so the fixture stops them with
SIGTERM at the end. Each test gets its own tenant and its own receivers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.demo.processes import Pipeline
from services.demo.receivers import CHANNEL_TYPES, Receivers
from services.demo.tenant_api import TenantApi, new_tenant
from services.demo.world import AlertPublisher
from switchboard.codec import Codec
from switchboard.kafka import make_admin
from switchboard.settings import Settings
from switchboard.topics import ensure_topics, topic_specs

RETRY_DELAYS = "1s,3s"
MAX_ATTEMPTS = 4


def pipeline_environment(settings: Settings) -> dict[str, str]:
    """What the pipeline's processes see on top of the test's environment."""
    return {
        "SWITCHBOARD_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SWITCHBOARD_DATABASE_URL": settings.database_url,
        "SWITCHBOARD_RETRY_DELAYS": RETRY_DELAYS,
        "SWITCHBOARD_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }


def short_tiers(settings: Settings) -> Settings:
    """``settings`` with the tests' retry tiers, their topics created."""
    short = settings.model_copy(
        update={"retry_delays": RETRY_DELAYS, "max_attempts": MAX_ATTEMPTS}
    )
    failed = [
        r
        for r in ensure_topics(make_admin(short), topic_specs(short))
        if r.action == "failed"
    ]
    assert not failed, failed
    return short


@pytest.fixture(scope="session")
def e2e_settings(settings: Settings) -> Settings:
    """The shared stack's settings with short retry tiers."""
    return short_tiers(settings)


@pytest.fixture(scope="session")
def pipeline(
    e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """API, router, deliverer and recorder on the shared stack, for the session."""
    running = Pipeline.create(
        tmp_path_factory.mktemp("e2e-logs"),
        pipeline_environment(e2e_settings),
        CHANNEL_TYPES,
    )
    with running:
        yield running


@pytest.fixture
def receivers(
    e2e_settings: Settings, tmp_path: Path, unique: str
) -> Iterator[Receivers]:
    """One receiver per channel type, for one test."""
    with Receivers(
        tmp_path, e2e_settings.mqtt_host, e2e_settings.mqtt_port, unique
    ) as started:
        yield started


@pytest.fixture
def tenant(
    pipeline: Pipeline, e2e_settings: Settings, unique: str
) -> Iterator[tuple[str, TenantApi]]:
    """A fresh tenant and a client of its API."""
    tenant_id, key = new_tenant(e2e_settings.database_url, f"e2e-{unique}")
    api = TenantApi(pipeline.api_url, key)
    yield tenant_id, api
    api.close()


@pytest.fixture
def publisher(e2e_settings: Settings, codec: Codec) -> AlertPublisher:
    """Publishes alerts to the shared alerts topic."""
    return AlertPublisher(e2e_settings, codec)
