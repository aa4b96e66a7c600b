"""A tenant's channels and rules, and publishing alerts, for demo and tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from services.demo.expect import Reference
from services.demo.receivers import PROBE_PATH, Receivers
from services.demo.scenario import utc_now
from services.demo.tenant_api import (
    TenantApi,
    config_keys,
    new_tenant,
    unique_name,
    wait_config_published,
)
from switchboard.codec import Codec
from switchboard.kafka import make_producer
from switchboard.settings import Settings

FLUSH_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 60.0
PROBE_INTERVAL_S = 1.0


@dataclass
class Configured:
    """The tenant's channels (by type) and rules, and the reference router over them."""

    channels: dict[str, dict[str, Any]]
    rules: list[dict[str, Any]]
    reference: Reference


def configure(
    api: TenantApi,
    receivers: Receivers,
    database_url: str,
    rule_bodies: Callable[[dict[str, str]], list[dict[str, Any]]],
    channel_types: list[str] | None = None,
    publisher: AlertPublisher | None = None,
    probe_name: str | None = None,
    alive: Callable[[], None] | None = None,
) -> Configured:
    """Create channels and rules through the API; wait until the pipeline has them.

    With a ``publisher``, waits until a probe of a later change has gone
    through router and deliverer (:func:`wait_until_routed`, which
    ``probe_name`` and ``alive`` are for); else only until the relay has
    published the changes.
    """
    bodies = receivers.channel_bodies()
    wanted = channel_types or list(bodies)
    channels = {t: api.create_channel(bodies[t]) for t in wanted}
    ids = {t: channel["id"] for t, channel in channels.items()}
    rules = [api.create_rule(body) for body in rule_bodies(ids)]
    wait_config_published(database_url, config_keys(list(channels.values()), rules))
    if publisher is not None:
        wait_until_routed(
            str(api.client.base_url),
            database_url,
            receivers,
            publisher,
            probe_name=probe_name,
            alive=alive,
        )
    types = {channel["id"]: t for t, channel in channels.items()}
    return Configured(channels, rules, Reference(rules, types))


def wait_until_routed(
    api_url: str,
    database_url: str,
    receivers: Receivers,
    publisher: AlertPublisher,
    probe_name: str | None = None,
    alive: Callable[[], None] | None = None,
) -> None:
    """Wait until the router and deliverer apply configuration made up to now.

    notify.config is one partition, applied in order: once a probe tenant's
    rule, created after ours, routes a probe alert to the webhook receiver,
    every earlier change is in the router's and the deliverer's caches too.
    The probe's channel and rule are deleted afterwards (through the API), so
    they do not outlive the receiver they point at; its tenant, named
    ``probe_name``, stays with the probe's job. ``alive`` is called while
    waiting and may raise, e.g. when a service has exited.
    """
    tenant_id, key = new_tenant(database_url, probe_name or unique_name("probe"))
    probe = TenantApi(api_url, key)
    # A path of its own, so an earlier probe's request cannot answer this one.
    path = f"{PROBE_PATH}/{tenant_id}"
    try:
        channel = probe.create_channel(
            receivers.channel_bodies("Probe")["webhook"]
            | {"config": {"url": receivers.webhook.url(path)}}
        )
        probe.create_rule({"channel_id": channel["id"], "name": "probe"})
        _probe_until_received(receivers, publisher, tenant_id, path, alive)
        probe.delete_channel(channel["id"])  # and with it the rule
    finally:
        probe.close()


def _probe_until_received(
    receivers: Receivers,
    publisher: AlertPublisher,
    tenant_id: str,
    path: str,
    alive: Callable[[], None] | None,
) -> None:
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        publisher.publish(_probe_alert(tenant_id))
        publisher.flush()
        waited = time.monotonic() + PROBE_INTERVAL_S
        while time.monotonic() < waited:
            if receivers.webhook.received(path):
                return
            time.sleep(0.05)
    raise RuntimeError("the router did not pick up the configuration in time")


def _probe_alert(tenant_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": "probe",
        "kind": "OPEN",
        "severity": "INFO",
        "alert_type": "probe",
        "site_id": None,
        "device_id": None,
        "summary": "configuration probe",
        "details": None,
        "labels": {},
        "occurred_at": utc_now(),
        "source": "switchboard-demo",
    }


class AlertPublisher:
    """Publishes AlertEvents to the alerts topic, keyed tenant_id/alert_id."""

    def __init__(
        self, settings: Settings, codec: Codec, topic: str | None = None
    ) -> None:
        """Produce with the project's producer settings."""
        self.topic = topic or settings.alerts_topic
        self.codec = codec
        self.producer: Producer = make_producer(settings)
        self.failed: list[str] = []

    def publish(self, alert: dict[str, Any]) -> None:
        """Queue one event; a delivery failure is remembered, never dropped silently."""
        self.producer.produce(
            self.topic,
            key=f"{alert['tenant_id']}/{alert['alert_id']}".encode(),
            value=self.codec.encode("AlertEvent", alert),
            on_delivery=self._delivered,
        )
        self.producer.poll(0)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self.failed.append(str(error))

    def flush(self) -> None:
        """Wait until every queued event is acknowledged."""
        remaining = self.producer.flush(FLUSH_TIMEOUT_S)
        if remaining or self.failed:
            raise RuntimeError(
                f"{remaining} events unsent, {len(self.failed)} failed: "
                f"{self.failed[:3]}"
            )
