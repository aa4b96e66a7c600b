"""The topics and consumer groups one channel type's deliverer works with."""

from __future__ import annotations

from dataclasses import dataclass

from services.deliverer.ladder import Tier
from switchboard.settings import Settings
from switchboard.topics import (
    deliverer_group,
    deliverer_retry_group,
    delivery_topic,
    dlq_topic,
    retry_topic,
)


@dataclass(frozen=True)
class TypeTopics:
    """Main topic, retry tiers, dead-letter topic and groups of one channel type."""

    channel_type: str
    main: str
    tiers: tuple[Tier, ...]
    dlq: str
    group: str
    retry_group: str

    @classmethod
    def for_type(cls, channel_type: str, settings: Settings) -> TypeTopics:
        """The topics and groups the design names for ``channel_type``."""
        tiers = tuple(
            Tier(label, delay_ms, retry_topic(channel_type, label))
            for label, delay_ms in settings.retry_tiers
        )
        return cls(
            channel_type=channel_type,
            main=delivery_topic(channel_type),
            tiers=tiers,
            dlq=dlq_topic(channel_type),
            group=deliverer_group(channel_type),
            retry_group=deliverer_retry_group(channel_type),
        )

    @property
    def retry_topics(self) -> list[str]:
        """Every retry tier's topic."""
        return [tier.topic for tier in self.tiers]

    @property
    def all_topics(self) -> list[str]:
        """Every topic this type reads or writes, except notify.jobs."""
        return [self.main, *self.retry_topics, self.dlq]
