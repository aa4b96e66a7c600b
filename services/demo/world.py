"""A tenant's channels and rules, and publishing alerts, for demo and tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from services.demo.expect import Reference
from services.demo.receivers import Receivers
from services.demo.tenant_api import TenantApi, config_keys, wait_config_published
from switchboard.codec import Codec
from switchboard.kafka import make_producer
from switchboard.settings import Settings

FLUSH_TIMEOUT_S = 30.0


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
) -> Configured:
    """Create channels and rules through the API; wait until they are published."""
    bodies = receivers.channel_bodies()
    wanted = channel_types or list(bodies)
    channels = {t: api.create_channel(bodies[t]) for t in wanted}
    ids = {t: channel["id"] for t, channel in channels.items()}
    rules = [api.create_rule(body) for body in rule_bodies(ids)]
    wait_config_published(database_url, config_keys(list(channels.values()), rules))
    types = {channel["id"]: t for t, channel in channels.items()}
    return Configured(channels, rules, Reference(rules, types))


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
