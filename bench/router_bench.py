"""Router throughput through the real broker, against a consume-produce ceiling.

Run: ``.venv/bin/python bench/router_bench.py [--events 30000]``. It creates its
own topics (``bench.router.<random>.*``, deleted at the end), including its own
config topic, so the shared ``notify.config`` is left alone.

1. 1,000 tenants with 10 rules each; a backlog of events over all tenants is
   routed by the real :class:`Router` (one transaction per batch) and timed.
2. The ceiling: a minimal Python loop that consumes the same backlog and, in
   the same transactions (same batch size, offsets sent to the transaction),
   produces for every event the same number of messages of the same sizes as
   the router (one command and one job event per match), without decoding or
   matching anything.
3. One tenant with 100, 1,000 and 10,000 rules, routed the same way, plus the
   in-memory matching rate of the index and of the plain reference filter.

Rules are built so that an event matches one to three rules whatever the
number of rules, so the output per event stays the same and the runs compare
matching cost rather than output volume.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic
from prometheus_client import REGISTRY

from services.router.app import Router, RouterOptions, RouterTopics
from services.router.matcher import RuleIndex, reference_matches
from switchboard.codec import Codec, default_codec
from switchboard.config_cache import (
    ChannelRecord,
    RuleRecord,
    channel_key,
    encode_channel_event,
    encode_rule_event,
    rule_key,
)
from switchboard.domain import JobState
from switchboard.jobs import job_event, new_command
from switchboard.kafka import (
    make_admin,
    make_consumer,
    make_producer,
    make_transactional_producer,
)
from switchboard.settings import Settings
from switchboard.topics import CHANNEL_TYPES

PARTITIONS = 3
BATCH_SIZE = 500
BATCH_TIMEOUT_S = 0.05
SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
KINDS = ["OPEN", "ACKNOWLEDGED", "CLOSED"]
RULE_SHAPES = 10


def make_rules(tenant_id: str, channel_ids: list[str], count: int) -> list[RuleRecord]:
    """``count`` rules of one tenant, each narrowed by site, type or device prefix."""
    rules = []
    for j in range(count):
        shape = j % RULE_SHAPES
        fields: dict[str, Any] = {}
        if shape < 5:
            fields["site_ids"] = (f"site-{j}", f"site-{j + 1}")
        elif shape < 8:
            fields["alert_types"] = (f"type-{j}",)
        elif shape == 8:
            fields["device_prefixes"] = (f"dev-{j}-",)
        else:
            fields["site_ids"] = (f"site-{j}",)
            fields["alert_types"] = (f"type-{j}", f"type-{j - 1}")
        if j % 3 == 1:
            fields["min_severity"] = "MEDIUM"
        if j % 4 == 2:
            fields["deliver_on"] = ("OPEN", "CLOSED")
        rules.append(
            RuleRecord(
                id=f"{tenant_id}-rule-{j}",
                tenant_id=tenant_id,
                channel_id=channel_ids[j % len(channel_ids)],
                name=f"rule {j}",
                priority=j,
                stop_on_match=j % 17 == 0,
                **fields,
            )
        )
    return rules


def make_alert(tenant_id: str, rules_per_tenant: int, rng: random.Random) -> dict:
    """An event that hits one rule's site, another's type and a third's device."""
    alert_id = uuid.uuid4().hex
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": alert_id,
        "kind": rng.choice(KINDS),
        "severity": rng.choice(SEVERITIES),
        "alert_type": f"type-{rng.randrange(rules_per_tenant)}",
        "site_id": f"site-{rng.randrange(rules_per_tenant)}",
        "device_id": f"dev-{rng.randrange(rules_per_tenant)}-{rng.randrange(100)}",
        "summary": "Interface ge-0/0/1 down on core router",
        "details": "Link down detected by the poller; neighbour unreachable.",
        "labels": {"region": "eu-west", "team": "network"},
        "occurred_at": datetime.now(UTC),
        "source": "bench",
    }


@dataclass
class Workload:
    """Tenants, channels, rules and the events to route."""

    channels: list[ChannelRecord]
    rules: list[RuleRecord]
    alerts: list[dict]


def build_workload(
    tenants: int, rules_per_tenant: int, events: int, tag: str
) -> Workload:
    """Tenants with two channels each and ``rules_per_tenant`` rules; random events."""
    rng = random.Random(42)
    channels, rules = [], []
    for t in range(tenants):
        tenant_id = f"bench-{tag}-{t}"
        pair = [
            ChannelRecord(
                id=f"{tenant_id}-ch-{k}",
                tenant_id=tenant_id,
                name="bench",
                channel_type=CHANNEL_TYPES[(t + k) % len(CHANNEL_TYPES)],
                enabled=True,
                config_json="{}",
                secrets_encrypted=None,
            )
            for k in range(2)
        ]
        channels += pair
        rules += make_rules(tenant_id, [c.id for c in pair], rules_per_tenant)
    alerts = [
        make_alert(f"bench-{tag}-{rng.randrange(tenants)}", rules_per_tenant, rng)
        for _ in range(events)
    ]
    return Workload(channels, rules, alerts)


class BenchTopics:
    """Every topic the benchmark creates, deleted at the end."""

    def __init__(self, settings: Settings) -> None:
        """Names under ``bench.router.<random>``."""
        self.base = f"bench.router.{uuid.uuid4().hex[:8]}"
        self.admin = make_admin(settings)
        self.created: list[str] = []

    def create(self, suffix: str, partitions: int, config: dict | None = None) -> str:
        """Create one topic and remember it."""
        name = f"{self.base}.{suffix}"
        futures = self.admin.create_topics(
            [NewTopic(name, num_partitions=partitions, config=config or {})]
        )
        futures[name].result(30)
        self.created.append(name)
        return name

    def delete_all(self) -> None:
        """Delete every topic created."""
        if self.created:
            futures = self.admin.delete_topics(self.created, operation_timeout=30)
            for future in futures.values():
                future.result(60)


def publish_config(
    settings: Settings, codec: Codec, topic: str, work: Workload
) -> None:
    """Publish the workload's channels and rules to the bench config topic."""
    producer = make_producer(settings, **{"linger.ms": 50})
    for channel in work.channels:
        producer.produce(
            topic, encode_channel_event(codec, channel, 1), channel_key(channel.id)
        )
        producer.poll(0)
    for rule in work.rules:
        producer.produce(topic, encode_rule_event(codec, rule, 1), rule_key(rule.id))
        producer.poll(0)
    producer.flush(60)


def publish_alerts(
    settings: Settings, codec: Codec, topic: str, alerts: list[dict]
) -> None:
    """Produce the backlog of events to route."""
    producer = make_producer(settings, **{"linger.ms": 20})
    for alert in alerts:
        value = codec.encode("AlertEvent", alert)
        while True:
            try:
                producer.produce(
                    topic, value, f"{alert['tenant_id']}/{alert['alert_id']}"
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)


def consumed_so_far() -> float:
    """The router's consumed-events counter in this process."""
    return REGISTRY.get_sample_value("switchboard_router_events_consumed_total") or 0.0


@dataclass(frozen=True)
class Rate:
    """Events per second (wall clock) and CPU microseconds per event (process)."""

    per_s: float
    cpu_us: float

    @classmethod
    def measure(cls, events: int, wall_s: float, cpu_s: float) -> Rate:
        """The rate of ``events`` handled in ``wall_s`` using ``cpu_s`` of CPU."""
        return cls(events / wall_s, cpu_s / events * 1e6)


def time_router(settings: Settings, topics: RouterTopics, events: int) -> Rate:
    """Route a backlog of ``events`` with the real router."""
    options = RouterOptions(
        transactional_id=f"bench.router.{uuid.uuid4().hex[:8]}",
        group_id=f"bench.router.{uuid.uuid4().hex[:8]}",
        batch_size=BATCH_SIZE,
        batch_timeout_s=BATCH_TIMEOUT_S,
    )
    router = Router(settings, topics, options)
    stop = threading.Event()
    thread = threading.Thread(target=router.run, args=(stop,), daemon=True)
    before = consumed_so_far()
    thread.start()
    while consumed_so_far() == before:
        time.sleep(0.002)
    # Timed from the first committed batch, so start-up (config cache, group
    # join, throttle restore) is left out of the rate.
    first_batch, started = consumed_so_far() - before, time.monotonic()
    cpu_started = time.process_time()
    while consumed_so_far() - before < events:
        time.sleep(0.002)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    stop.set()
    thread.join(60)
    return Rate.measure(events - first_batch, elapsed, cpu)


Output = tuple[str, str, bytes]


def router_outputs(
    codec: Codec, work: Workload, delivery_prefix: str, jobs_topic: str
) -> dict[bytes, list[Output]]:
    """Per input key, the (topic, key, value) messages the router produces for it.

    The ceiling replays exactly these (into its own topics), so it moves the
    same messages to the same number of topics and partitions as the router.
    """
    index = RuleIndex()
    index.update(1, {c.id: c for c in work.channels}, {r.id: r for r in work.rules})
    outputs = {}
    for alert in work.alerts:
        produced = []
        for match in index.matches(alert):
            command = new_command(
                alert, match.channel_id, match.channel_type, match.rule_id
            )
            produced.append(
                (
                    f"{delivery_prefix}{match.channel_type}",
                    match.channel_id,
                    codec.encode("DeliveryCommand", command),
                )
            )
            event = job_event(command, JobState.QUEUED, 1)
            produced.append(
                (jobs_topic, command["job_id"], codec.encode("JobEvent", event))
            )
        outputs[f"{alert['tenant_id']}/{alert['alert_id']}".encode()] = produced
    return outputs


def time_ceiling(
    settings: Settings, alerts_topic: str, outputs: dict[bytes, list[Output]]
) -> Rate:
    """The same consume-produce-commit loop without decoding or matching."""
    consumer = make_consumer(settings, f"bench.ceiling.{uuid.uuid4().hex[:8]}")
    consumer.subscribe([alerts_topic])
    producer = make_transactional_producer(
        settings, f"bench.ceiling.{uuid.uuid4().hex}"
    )
    total, done, started = len(outputs), 0, 0.0
    first_batch, cpu_started = 0, 0.0
    while done < total:
        messages = consumer.consume(BATCH_SIZE, timeout=BATCH_TIMEOUT_S)
        messages = [m for m in messages if m.error() is None]
        if not messages:
            continue
        producer.begin_transaction()
        offsets: dict[int, int] = {}
        for message in messages:
            for topic, key, value in outputs[message.key()]:
                producer.produce(topic, value, key)
            offsets[message.partition()] = message.offset() + 1
        producer.send_offsets_to_transaction(
            [TopicPartition(alerts_topic, p, o) for p, o in offsets.items()],
            consumer.consumer_group_metadata(),
        )
        producer.commit_transaction()
        done += len(messages)
        if not started:
            first_batch, started = len(messages), time.monotonic()
            cpu_started = time.process_time()
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu_started
    consumer.close()
    return Rate.measure(total - first_batch, elapsed, cpu)


def matching_rate(work: Workload, reference: bool, limit: int) -> float:
    """Events per second matched in memory, by the index or by the plain filter."""
    channels = {c.id: c for c in work.channels}
    rules = {r.id: r for r in work.rules}
    alerts = work.alerts[:limit]
    index = RuleIndex()
    index.update(1, channels, rules)
    started = time.perf_counter()
    for alert in alerts:
        if reference:
            reference_matches(rules.values(), channels, alert)
        else:
            index.matches(alert)
    return len(alerts) / (time.perf_counter() - started)


def matches_per_event(work: Workload) -> float:
    """Average number of rules an event of the workload matches."""
    index = RuleIndex()
    index.update(1, {c.id: c for c in work.channels}, {r.id: r for r in work.rules})
    return sum(len(index.matches(a)) for a in work.alerts) / len(work.alerts)


@dataclass
class BenchTopicSet:
    """The router's topics in the benchmark, and where the ceiling writes."""

    config: str
    throttle: str
    jobs: str
    dlq: str
    delivery_prefix: str
    ceiling_jobs: str
    ceiling_delivery_prefix: str

    def router(self, alerts: str) -> RouterTopics:
        """The router's topics for one alerts topic."""
        return RouterTopics(
            alerts=alerts,
            jobs=self.jobs,
            dlq=self.dlq,
            throttle=self.throttle,
            config=self.config,
            delivery_prefix=self.delivery_prefix,
        )


def create_topics(bench: BenchTopics) -> BenchTopicSet:
    """The topics router and ceiling write to, and the config and throttle topics."""
    compacted = {"cleanup.policy": "compact"}
    for channel_type in CHANNEL_TYPES:
        bench.create(f"delivery.{channel_type}", PARTITIONS)
        bench.create(f"ceiling.delivery.{channel_type}", PARTITIONS)
    return BenchTopicSet(
        config=bench.create("config", 1, compacted),
        throttle=bench.create("throttle", PARTITIONS, compacted),
        jobs=bench.create("jobs", PARTITIONS),
        dlq=bench.create("dlq", 1),
        delivery_prefix=f"{bench.base}.delivery.",
        ceiling_jobs=bench.create("ceiling.jobs", PARTITIONS),
        ceiling_delivery_prefix=f"{bench.base}.ceiling.delivery.",
    )


def compare_with_ceiling(
    settings: Settings,
    codec: Codec,
    bench: BenchTopics,
    topics: BenchTopicSet,
    work: Workload,
    rounds: int,
) -> None:
    """Time router and ceiling on the same backlog, alternating, best of ``rounds``."""
    alerts = bench.create("alerts.main", PARTITIONS)
    publish_alerts(settings, codec, alerts, work.alerts)
    outputs = router_outputs(
        codec, work, topics.ceiling_delivery_prefix, topics.ceiling_jobs
    )
    print(
        f"1,000 tenants x 10 rules, {len(work.alerts)} events, "
        f"{matches_per_event(work):.2f} matches per event, batches of {BATCH_SIZE}"
    )
    router_rates, ceiling_rates = [], []
    for round_number in range(1, rounds + 1):
        router_rates.append(time_router(settings, topics.router(alerts), len(outputs)))
        ceiling_rates.append(time_ceiling(settings, alerts, outputs))
        router, ceiling = router_rates[-1], ceiling_rates[-1]
        print(
            f"  round {round_number}: router {router.per_s:7.0f} events/s "
            f"({router.cpu_us:4.0f} us CPU/event), ceiling {ceiling.per_s:7.0f} "
            f"events/s ({ceiling.cpu_us:4.0f} us CPU/event), "
            f"ratio {router.per_s / ceiling.per_s:4.2f}"
        )
    best_router = max(rate.per_s for rate in router_rates)
    best_ceiling = max(rate.per_s for rate in ceiling_rates)
    print(f"  best router : {best_router:7.0f} events/s")
    print(f"  best ceiling: {best_ceiling:7.0f} events/s")
    print(f"  ratio       : {best_router / best_ceiling:7.2f}")


def scale_rules(
    settings: Settings,
    codec: Codec,
    bench: BenchTopics,
    topics: BenchTopicSet,
    works: dict[int, Workload],
) -> None:
    """Route one tenant's events with 100, 1,000 and 10,000 rules."""
    events = len(next(iter(works.values())).alerts)
    print(f"one tenant, {events} events each")
    for count, work in works.items():
        alerts = bench.create(f"alerts.scale{count}", PARTITIONS)
        publish_alerts(settings, codec, alerts, work.alerts)
        rate = time_router(settings, topics.router(alerts), events)
        indexed = matching_rate(work, reference=False, limit=events)
        plain = matching_rate(work, reference=True, limit=max(50, 200_000 // count))
        print(
            f"  {count:6d} rules: router {rate.per_s:7.0f} events/s "
            f"({rate.cpu_us:4.0f} us CPU/event); in memory: index "
            f"{indexed:8.0f}/s, plain filter {plain:8.0f}/s; "
            f"{matches_per_event(work):.2f} matches/event"
        )


def main() -> None:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--scale-events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings, codec = Settings(), default_codec()
    bench = BenchTopics(settings)
    try:
        topics = create_topics(bench)
        main_work = build_workload(1000, 10, args.events, "main")
        scale_works = {
            n: build_workload(1, n, args.scale_events, f"scale{n}")
            for n in (100, 1000, 10_000)
        }
        for work in [main_work, *scale_works.values()]:
            publish_config(settings, codec, topics.config, work)
        compare_with_ceiling(settings, codec, bench, topics, main_work, args.rounds)
        scale_rules(settings, codec, bench, topics, scale_works)
    finally:
        bench.delete_all()


if __name__ == "__main__":
    main()
