"""The config cache: caught up before ready, then current with every change."""

from __future__ import annotations

import time
from collections.abc import Callable

from switchboard.codec import Codec
from switchboard.config_cache import (
    ChannelRecord,
    ConfigCache,
    RuleRecord,
    channel_key,
    encode_channel_event,
    encode_rule_event,
    rule_key,
)
from switchboard.kafka import make_producer
from switchboard.settings import Settings


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_cache_is_ready_only_after_reading_what_was_there(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    topic = make_topic("config", config={"cleanup.policy": "compact"})
    producer = make_producer(settings)
    for index in range(200):
        rule = RuleRecord(f"r{index}", "t1", "c1", f"rule {index}", index)
        producer.produce(
            topic, key=rule_key(rule.id), value=encode_rule_event(codec, rule, index)
        )
    producer.flush(10)
    cache = ConfigCache(settings, codec, topic=topic)

    cache.start()
    ready = cache.wait_ready(30)
    _, _, rules = cache.snapshot()
    cache.stop()

    assert ready
    assert len(rules) == 200
    assert rules["r7"].priority == 7


def test_changes_and_tombstones_apply_while_running(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    topic = make_topic("config", config={"cleanup.policy": "compact"})
    cache = ConfigCache(settings, codec, topic=topic)
    cache.start()
    assert cache.wait_ready(30)
    producer = make_producer(settings)
    channel = ChannelRecord("c1", "t1", "ops", "webhook", True, "{}", None)
    rule = RuleRecord("r1", "t1", "c1", "all", 1, site_ids=("s1",))

    producer.produce(
        topic, key=channel_key("c1"), value=encode_channel_event(codec, channel, 1)
    )
    producer.produce(topic, key=rule_key("r1"), value=encode_rule_event(codec, rule, 2))
    producer.flush(10)
    added = wait_for(
        lambda: cache.channel("c1") is not None and "r1" in cache.snapshot()[2]
    )
    disabled = ChannelRecord("c1", "t1", "ops", "webhook", False, "{}", None)
    producer.produce(
        topic, key=channel_key("c1"), value=encode_channel_event(codec, disabled, 3)
    )
    producer.produce(topic, key=rule_key("r1"), value=None)
    producer.flush(10)
    removed = wait_for(lambda: "r1" not in cache.snapshot()[2])
    cache.stop()

    assert added
    assert removed
    assert cache.channel("c1") == disabled
    assert cache.snapshot()[2] == {}


def test_an_undecodable_config_event_is_skipped(
    settings: Settings, codec: Codec, make_topic: Callable
) -> None:
    topic = make_topic("config", config={"cleanup.policy": "compact"})
    producer = make_producer(settings)
    producer.produce(topic, key=rule_key("bad"), value=b"not avro")
    good = RuleRecord("good", "t1", "c1", "ok", 1)
    producer.produce(
        topic, key=rule_key("good"), value=encode_rule_event(codec, good, 2)
    )
    producer.flush(10)
    cache = ConfigCache(settings, codec, topic=topic)

    cache.start()
    assert cache.wait_ready(30)
    _, _, rules = cache.snapshot()
    cache.stop()

    assert set(rules) == {"good"}
