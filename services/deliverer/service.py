"""The deliverer process: ``switchboard deliverer --type webhook,slack``.

For every served channel type it runs two consumers, one on the main delivery
topic (group ``switchboard.deliverer.<type>``) and one on the retry tiers (group
``switchboard.deliverer.<type>.retry``), feeding one pipeline that sends with
the type's ``Sender`` under three bounds: messages in flight per process
(``SWITCHBOARD_DELIVERER_MAX_IN_FLIGHT``), each channel's share of them, and
concurrent attempts per channel, so a slow endpoint only holds its own slots;
what it cannot take soon is deferred to a retry tier.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from typing import Any

from services.deliverer.channels import sender_class
from services.deliverer.channels.base import Sender
from services.deliverer.consumer import CommandConsumer
from services.deliverer.kafka_io import AsyncProducer
from services.deliverer.limits import InFlightLimits
from services.deliverer.lookup import DeliveredLookup
from services.deliverer.pipeline import Pipeline
from services.deliverer.resolve import ChannelResolver
from services.deliverer.topology import TypeTopics
from switchboard.codec import default_codec
from switchboard.config_cache import ConfigCache
from switchboard.kafka import make_admin
from switchboard.secrets import SecretBox
from switchboard.settings import Settings
from switchboard.topics import JOBS_TOPIC

log = logging.getLogger(__name__)

# Concurrent attempts per channel: a customer's endpoint sees at most this many.
PER_CHANNEL_CONCURRENCY = 16
# A channel's share of the in-flight bound, in rounds of its concurrency: enough
# to keep a healthy endpoint busy, and all that an endpoint hanging until its
# deadline can hold, so the other channels keep their slots.
CHANNEL_SHARE_ROUNDS = 4
CONFIG_READY_TIMEOUT_S = 60.0


class DelivererError(Exception):
    """Raised when the deliverer cannot start or had to stop to keep its guarantees."""


class Deliverer:
    """Delivers the commands of one or more channel types until stopped."""

    def __init__(
        self,
        settings: Settings,
        channel_types: list[str],
        *,
        topics: dict[str, TypeTopics] | None = None,
        jobs_topic: str = JOBS_TOPIC,
        max_in_flight: int | None = None,
        per_channel: int = PER_CHANNEL_CONCURRENCY,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Serve ``channel_types``; ``topics`` overrides the design's topic names.

        ``max_in_flight`` defaults to ``settings.deliverer_max_in_flight``;
        ``consumer_options`` override the Kafka consumers' configuration.
        """
        self._settings = settings
        self._types = channel_types
        self._topics = topics or {
            t: TypeTopics.for_type(t, settings) for t in channel_types
        }
        self._jobs_topic = jobs_topic
        self._max_in_flight = max_in_flight or settings.deliverer_max_in_flight
        self._per_channel = per_channel
        self._consumer_options = consumer_options

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until ``stopping`` is set; raise if a guarantee forced a stop."""
        loop = asyncio.get_running_loop()
        self._check_topics()
        cache = ConfigCache(self._settings)
        cache.start()
        if not await loop.run_in_executor(
            None, cache.wait_ready, CONFIG_READY_TIMEOUT_S
        ):
            cache.stop()
            raise DelivererError("notify.config did not load in time")
        senders: dict[str, Sender] = {
            t: sender_class(t)(self._settings) for t in self._types
        }
        producer = AsyncProducer(self._settings)
        producer.start()
        lookup = DeliveredLookup(self._settings.database_url)
        consumers = self._consumers(cache, senders, producer, lookup)
        log.info("deliverer started", extra={"channel_types": ",".join(self._types)})
        try:
            await asyncio.gather(*(c.run(stopping) for c in consumers))
        finally:
            for sender in senders.values():
                await sender.close()
            await loop.run_in_executor(None, producer.close)
            await lookup.close()
            cache.stop()
        failures = [c.failure for c in consumers if c.failure is not None]
        if failures:
            raise DelivererError("stopped to keep delivery guarantees") from failures[0]

    def _consumers(
        self,
        cache: ConfigCache,
        senders: dict[str, Sender],
        producer: AsyncProducer,
        lookup: DeliveredLookup,
    ) -> list[CommandConsumer]:
        codec = default_codec()
        resolver = ChannelResolver(cache, SecretBox.from_settings(self._settings))
        pipeline = Pipeline(
            codec,
            producer,
            resolver,
            senders,
            self._topics,
            self._jobs_topic,
            self._settings.max_attempts,
            self._per_channel,
        )
        limits = InFlightLimits(
            self._max_in_flight, channel_share(self._max_in_flight, self._per_channel)
        )
        return [
            CommandConsumer(
                self._settings,
                self._topics[t],
                retry,
                pipeline,
                lookup,
                codec,
                limits,
                self._consumer_options,
            )
            for t in self._types
            for retry in (False, True)
        ]

    def _check_topics(self) -> None:
        wanted = {self._jobs_topic}
        for topics in self._topics.values():
            wanted.update(topics.all_topics)
        existing = make_admin(self._settings).list_topics(timeout=30.0).topics
        missing = sorted(wanted - set(existing))
        if missing:
            raise DelivererError(
                "topics missing (run `switchboard topics create`): "
                + ", ".join(missing)
            )


def channel_share(max_in_flight: int, per_channel: int) -> int:
    """How many of ``max_in_flight`` messages one channel may hold.

    At most half of them, so one channel can never take every slot.
    """
    return max(1, min(CHANNEL_SHARE_ROUNDS * per_channel, max_in_flight // 2))


def run_deliverer(settings: Settings, channel_types: list[str]) -> None:
    """Run a deliverer in this process until SIGINT or SIGTERM."""

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await Deliverer(settings, channel_types).run(stopping)

    asyncio.run(main())
