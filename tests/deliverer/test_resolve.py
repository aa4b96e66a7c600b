"""Resolving a channel whose stored secrets this process cannot decrypt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from cryptography.fernet import Fernet

from services.deliverer.outcome import OutcomeKind, Reason
from services.deliverer.resolve import ChannelResolver
from switchboard.codec import Codec
from switchboard.config_cache import (
    ChannelRecord,
    ConfigCache,
    channel_key,
    encode_channel_event,
)
from switchboard.kafka import make_producer
from switchboard.secrets import SecretBox
from switchboard.settings import Settings


async def test_secrets_under_a_key_this_process_lacks_are_retried_not_dead(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    # Secrets rotated to a new key before this process was given it.
    rotated_to = SecretBox(Fernet.generate_key().decode())
    channel = ChannelRecord(
        id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        name="rotated",
        channel_type="slack",
        enabled=True,
        config_json=json.dumps({}),
        secrets_encrypted=rotated_to.encrypt(
            {"webhook_url": "https://hooks.slack.com/services/T/B/secret"}
        ),
    )
    topic = make_topic("config", config={"cleanup.policy": "compact"})
    producer = make_producer(settings)
    producer.produce(
        topic, encode_channel_event(codec, channel, 1), channel_key(channel.id)
    )
    producer.flush(10)
    cache = ConfigCache(settings, codec, topic=topic)
    cache.start()
    assert cache.wait_ready(30)
    resolver = ChannelResolver(cache, SecretBox(Fernet.generate_key().decode()))
    command = {
        "channel_id": channel.id,
        "tenant_id": channel.tenant_id,
        "channel_type": "slack",
    }

    try:
        resolution = await resolver.resolve(command)
    finally:
        cache.stop()

    assert resolution.failure is not None
    assert resolution.failure.kind is OutcomeKind.RETRYABLE
    assert resolution.failure.reason is Reason.SECRETS_UNREADABLE
