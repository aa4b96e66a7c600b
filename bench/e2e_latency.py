"""Event-to-receiver latency through the whole pipeline, beside a bare Kafka hop.

In one run, on the same broker:

1. bare hop: an AlertEvent-sized message produced (the project's producer
   settings) and consumed by a plain consumer, at the steady rate;
2. pipeline: AlertEvents published to the alerts topic at the same rate and
   routed, delivered and signed by the real processes (API, outbox relay, router,
   webhook deliverer, recorder), timed from ``occurred_at`` (the publish time)
   to the webhook receiver's receipt;
3. fan-out: every event to three webhook channels, at rising steady rates; a
   rate counts as sustained when every delivery arrived within a few seconds of
   the end of publishing and the p99 latency stayed under a bound.

Run: ``.venv/bin/python bench/e2e_latency.py`` (about three minutes; needs the
local stack, which ``switchboard stack up`` starts). Prints median and p99 of
each, and the highest sustained fan-out rate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.demo.processes import Pipeline  # noqa: E402
from services.demo.receivers import SIGNING_SECRET, Receivers  # noqa: E402
from services.demo.scenario import utc_now  # noqa: E402
from services.demo.tenant_api import TenantApi, new_tenant, unique_name  # noqa: E402
from services.demo.world import (  # noqa: E402
    AlertPublisher,
    config_keys,
    wait_config_published,
    wait_until_routed,
)
from switchboard import db  # noqa: E402
from switchboard import stack as local_stack  # noqa: E402
from switchboard.codec import default_codec  # noqa: E402
from switchboard.kafka import make_admin, make_producer  # noqa: E402
from switchboard.settings import Settings  # noqa: E402
from switchboard.topics import ensure_topics, topic_specs  # noqa: E402

FAN_OUT = 3
SUSTAINED_P99_MS = 2000.0
DRAIN_S = 10.0
WARM_UP_MESSAGES = 20


def percentiles(values: list[float]) -> tuple[float, float]:
    """Median and 99th percentile."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def paced(rate: float, seconds: float) -> Any:
    """Yield at ``rate`` per second for ``seconds``, catching up if behind."""
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield n


def bare_hop(settings: Settings, rate: float, seconds: float) -> list[float]:
    """Latencies (ms) of produce → consume on a private topic."""
    topic = f"bench.e2e.hop.{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings)
    admin.create_topics([NewTopic(topic, num_partitions=3)])[topic].result(30)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    latencies: list[float] = []
    expected = int(rate * seconds)
    done = threading.Event()
    threading.Thread(
        target=_consume_hop, args=(consumer, latencies, expected, done), daemon=True
    ).start()
    producer = make_producer(settings)
    body = b"x" * 600
    # Connections and metadata first, so the first timed message pays for none.
    for _n in range(WARM_UP_MESSAGES):
        producer.produce(topic, key=b"warm-up", value=b"warm-up|" + body)
    producer.flush(30)
    for n in paced(rate, seconds):
        stamp = str(time.time()).encode()
        producer.produce(topic, key=str(n).encode(), value=stamp + b"|" + body)
        producer.poll(0)
    producer.flush(30)
    done.wait(30)
    consumer.close()
    admin.delete_topics([topic])
    return latencies


def _consume_hop(
    consumer: Consumer, latencies: list[float], expected: int, done: threading.Event
) -> None:
    while len(latencies) < expected:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        stamp = message.value().split(b"|", 1)[0]
        if stamp == b"warm-up":
            continue
        sent = float(stamp)
        latencies.append((time.time() - sent) * 1000)
    done.set()


class Bench:
    """A pipeline with a tenant whose webhook channels all point at one receiver."""

    def __init__(self, settings: Settings, work_dir: Path) -> None:
        self.settings = settings
        self.receivers = Receivers(
            work_dir, settings.mqtt_host, settings.mqtt_port, unique_name("bench")
        )
        self.pipeline = Pipeline.create(work_dir / "logs", {}, ["webhook"])
        self.publisher = AlertPublisher(settings, default_codec())

    def start(self) -> None:
        """Start the receivers and the pipeline's processes."""
        self.receivers.start()
        self.pipeline.start()

    def stop(self) -> None:
        """Stop the pipeline's processes and the receivers."""
        self.pipeline.stop()
        self.receivers.stop()

    def tenant_with_channels(self, count: int) -> tuple[str, list[str]]:
        """A new tenant with ``count`` webhook channels, each with a match-all rule."""
        tenant_id, key = new_tenant(self.settings.database_url, unique_name("bench"))
        api = TenantApi(self.pipeline.api_url, key)
        paths = [f"/bench-{tenant_id[:8]}-{n}" for n in range(count)]
        channels = [api.create_channel(_webhook(self.receivers, p)) for p in paths]
        rules = [
            api.create_rule({"channel_id": c["id"], "name": f"all {n}"})
            for n, c in enumerate(channels)
        ]
        wait_config_published(self.settings.database_url, config_keys(channels, rules))
        wait_until_routed(
            self.pipeline.api_url,
            self.settings.database_url,
            self.receivers,
            self.publisher,
        )
        api.close()
        return tenant_id, paths

    def run(self, rate: float, seconds: float, fan_out: int) -> dict[str, Any]:
        """Publish at ``rate`` for ``seconds``; latencies of every delivery."""
        tenant_id, paths = self.tenant_with_channels(fan_out)
        sent: dict[str, float] = {}
        for n in paced(rate, seconds):
            alert = _alert(tenant_id, n)
            sent[alert["alert_id"]] = alert["occurred_at"].timestamp()
            self.publisher.publish(alert)
        self.publisher.flush()
        published_at = time.monotonic()
        wanted = len(sent) * fan_out
        while time.monotonic() - published_at < DRAIN_S:
            if len(self._received(paths)) >= wanted:
                break
            time.sleep(0.1)
        received = self._received(paths)
        latencies = [
            (r.received_at - sent[r.json()["alert"]["alert_id"]]) * 1000
            for r in received
        ]
        return {"wanted": wanted, "received": len(received), "latencies": latencies}

    def _received(self, paths: list[str]) -> list[Any]:
        """The first validly signed request of each job at ``paths``."""
        wanted = set(paths)
        first: dict[str | None, Any] = {}
        for request in self.receivers.webhook.received():
            if request.path in wanted and request.signature_valid:
                first.setdefault(request.webhook_id, request)
        return list(first.values())


def _webhook(receivers: Receivers, path: str) -> dict[str, Any]:
    return {
        "channel_type": "webhook",
        "name": f"bench {path}",
        "config": {"url": receivers.webhook.url(path)},
        "secrets": {"signing_secret": SIGNING_SECRET},
    }


def _alert(tenant_id: str, n: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "alert_id": f"bench-{n}",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": "ams-1",
        "device_id": f"core-ams-1-{n:05d}",
        "summary": f"Link down on core-ams-1-{n:05d}",
        "details": "bench",
        "labels": {"role": "core"},
        "occurred_at": utc_now(),
        "source": "bench",
    }


def _line(name: str, values: list[float]) -> str:
    median, p99 = percentiles(values)
    return f"{name:<34} median {median:7.1f} ms   p99 {p99:7.1f} ms   (n={len(values)})"


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="Events per second.")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fan-out-rates", default="50,100,150,200,300")
    parser.add_argument("--fan-out-seconds", type=float, default=10.0)
    args = parser.parse_args()

    settings = Settings()
    local_stack.up(settings)
    db.migrate(settings.database_url)
    ensure_topics(make_admin(settings), topic_specs(settings))

    hop = bare_hop(settings, args.rate, args.seconds)
    bench = Bench(settings, Path(tempfile.mkdtemp(prefix="switchboard-bench-")))
    bench.start()
    try:
        single = bench.run(args.rate, args.seconds, 1)
        print(f"steady rate {args.rate:.0f} events/s for {args.seconds:.0f}s")
        print(_line("bare produce-consume hop", hop))
        print(_line("event -> webhook receiver", single["latencies"]))
        print(f"  delivered {single['received']} of {single['wanted']}")
        _fan_out(bench, args)
    finally:
        bench.stop()


def _fan_out(bench: Bench, args: argparse.Namespace) -> None:
    best = 0.0
    for rate in [float(r) for r in args.fan_out_rates.split(",")]:
        result = bench.run(rate, args.fan_out_seconds, FAN_OUT)
        complete = result["received"] >= result["wanted"]
        p99 = percentiles(result["latencies"])[1] if result["latencies"] else 0.0
        sustained = complete and p99 <= SUSTAINED_P99_MS
        print(
            f"fan-out x{FAN_OUT} at {rate:5.0f} events/s: "
            f"{result['received']}/{result['wanted']} deliveries, "
            + _line("", result["latencies"]).strip()
            + ("  sustained" if sustained else "  NOT sustained")
        )
        if not sustained:
            break
        best = rate
    print(
        f"highest sustained rate with fan-out to {FAN_OUT} channels: "
        f"{best:.0f} events/s ({best * FAN_OUT:.0f} deliveries/s)"
    )
    if best == float(args.fan_out_rates.split(",")[-1]):
        print(
            "  (the highest rate tried; add higher --fan-out-rates to find the limit)"
        )


if __name__ == "__main__":
    main()
