"""Webhook deliveries per second through the whole deliverer, against bare httpx.

Both sides post the same payloads (those of the same commands) to the same fast
local receiver (a separate process), in the same run, with the same concurrency:

- bare: an ``httpx.AsyncClient`` loop, no Kafka, no signing, no bookkeeping;
- full path: commands read from Kafka, channels resolved from notify.config,
  payloads signed, posted, classified, and a ``delivered`` job event produced
  and acknowledged before each input offset is stored.

Run: ``.venv/bin/python bench/deliverer_webhook.py [--deliveries 3000]``.
Needs the local stack (``switchboard stack up``); uses private topics, deleted
at the end. Prints both rates and their ratio (goal: at least 0.6).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.deliverer.channels.webhook.payload import (  # noqa: E402
    build_payload,
    encode_payload,
)
from services.deliverer.ladder import Tier  # noqa: E402
from services.deliverer.service import Deliverer  # noqa: E402
from services.deliverer.topology import TypeTopics  # noqa: E402
from switchboard.codec import default_codec  # noqa: E402
from switchboard.kafka import make_admin  # noqa: E402
from switchboard.settings import Settings  # noqa: E402
from tests.deliverer.helpers import (  # noqa: E402
    make_command,
    produce_commands,
    publish_webhook_channel,
)

CHANNELS = 4
PER_CHANNEL = 16
CONCURRENCY = CHANNELS * PER_CHANNEL


def free_port() -> int:
    """A free loopback port for the receiver."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_receiver(port: int) -> subprocess.Popen:
    """The receiver in its own process, so it does not share our GIL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.receivers.webhook",
            "--port",
            str(port),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    process.stdout.readline()
    return process


async def bare_rate(url: str, bodies: list[bytes]) -> float:
    """Posts per second of a plain httpx loop shaped like the deliverer.

    CHANNELS clients of PER_CHANNEL connections, CONCURRENCY requests in flight:
    one client with that many connections is much slower in httpx, which would
    flatter the ratio.
    """

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
            response.raise_for_status()

    limits = httpx.Limits(max_connections=PER_CHANNEL)
    clients = [httpx.AsyncClient(limits=limits) for _ in range(CHANNELS)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    # Warm up: open the connections before timing, as the full path's timing
    # starts after its first deliveries.
    for body in bodies[:CONCURRENCY]:
        queue.put_nowait(body)
    await asyncio.gather(*(worker(clients[i % CHANNELS]) for i in range(CONCURRENCY)))
    for body in bodies:
        queue.put_nowait(body)

    started = time.perf_counter()
    await asyncio.gather(*(worker(clients[i % CHANNELS]) for i in range(CONCURRENCY)))
    rate = len(bodies) / (time.perf_counter() - started)
    for client in clients:
        await client.aclose()
    return rate


def full_path_rate(settings: Settings, commands: list[dict]) -> float:
    """Deliveries per second, measured on the acknowledged ``delivered`` events."""
    admin = make_admin(settings)
    suffix = uuid.uuid4().hex[:8]
    names = {
        kind: f"bench.{kind}.{suffix}" for kind in ("main", "retry", "dlq", "jobs")
    }
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=3) for n in names.values()]
    )
    for future in futures.values():
        future.result(30)
    try:
        return _measure(settings, commands, names)
    finally:
        admin.delete_topics(list(names.values()), operation_timeout=30)


def _measure(settings: Settings, commands: list[dict], names: dict[str, str]) -> float:
    produce_commands(settings, default_codec(), names["main"], commands)
    topics = TypeTopics(
        "webhook",
        names["main"],
        (Tier("10s", 10_000, names["retry"]),),
        names["dlq"],
        f"bench.deliverer.{uuid.uuid4()}",
        f"bench.deliverer.{uuid.uuid4()}.retry",
    )
    loop_box: dict = {}

    async def run() -> None:
        loop_box["loop"] = asyncio.get_running_loop()
        loop_box["stop"] = asyncio.Event()
        deliverer = Deliverer(
            settings,
            ["webhook"],
            topics={"webhook": topics},
            jobs_topic=names["jobs"],
            per_channel=PER_CHANNEL,
        )
        await deliverer.run(loop_box["stop"])

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    try:
        return _count_events(settings, names["jobs"], len(commands))
    finally:
        loop_box["loop"].call_soon_threadsafe(loop_box["stop"].set)
        thread.join(60)


def _count_events(settings: Settings, topic: str, count: int) -> float:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": str(uuid.uuid4())}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    seen, first_at, first_batch = 0, 0.0, 0
    deadline = time.monotonic() + 300
    while seen < count and time.monotonic() < deadline:
        messages = [m for m in consumer.consume(1000, 0.2) if m.error() is None]
        if messages and not seen:
            # Timing starts at the first acknowledged delivery, after start-up.
            first_at, first_batch = time.perf_counter(), len(messages)
        seen += len(messages)
    elapsed = time.perf_counter() - first_at
    consumer.close()
    if seen < count or first_batch >= count:
        raise RuntimeError(f"{seen} of {count} deliveries; too few to measure")
    return (count - first_batch) / elapsed


def webhook_commands(settings: Settings, url: str, count: int) -> list[dict]:
    """``count`` commands over CHANNELS webhook channels published to ``url``."""
    codec = default_codec()
    tenant = str(uuid.uuid4())
    channels = [
        publish_webhook_channel(settings, codec, tenant, url) for _ in range(CHANNELS)
    ]
    return [make_command(tenant, channels[i % CHANNELS]) for i in range(count)]


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    args = parser.parse_args()
    settings = Settings(allow_private_targets=True, log_level="WARNING")
    port = free_port()
    receiver = start_receiver(port)
    url = f"http://127.0.0.1:{port}/bench"
    try:
        commands = webhook_commands(settings, url, args.deliveries)
        sample = [encode_payload(build_payload(command)) for command in commands]
        bare = asyncio.run(bare_rate(url, sample))
        full = full_path_rate(settings, commands)
    finally:
        receiver.terminate()
        receiver.wait(10)
    print(f"deliveries:           {args.deliveries}")
    print(f"bare httpx loop:      {bare:8.0f} posts/s")
    print(f"deliverer full path:  {full:8.0f} deliveries/s")
    print(f"ratio:                {full / bare:8.2f} (goal >= 0.6)")


if __name__ == "__main__":
    main()
