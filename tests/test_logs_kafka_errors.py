"""Kafka client errors: an outage is reported while it lasts, not after it ended.

librdkafka queues a client's errors until the client next polls, so a producer
that sits idle through an outage would otherwise report it when it is next
used, minutes after the broker came back. The outage here is real: the client
bootstraps through a TCP relay to the shared broker that is closed, then opened.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from switchboard.kafka import IDLE_S, make_producer
from switchboard.settings import Settings

RECONNECT_WAIT_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Relay:
    """Forwards TCP connections on a loopback port to the broker."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", port))
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def relay_port() -> Iterator[int]:
    """A loopback port nothing listens on (yet)."""
    yield _free_port()


def _client_errors(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        str(getattr(r, "error", ""))
        for r in caplog.records
        if r.name == "switchboard.kafka" and r.levelno == level
    ]


def test_an_outage_that_ended_while_idle_is_not_reported_on_next_use(
    settings: Settings,
    make_topic,
    relay_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="switchboard.kafka")
    topic = make_topic("idle-outage")
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    producer = make_producer(
        settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{relay_port}"})
    )
    time.sleep(IDLE_S + 1)  # the broker is unreachable, the producer idle
    relay = _Relay(relay_port, (host, int(port)))
    try:
        # Back, and the client connects again by itself, still idle.
        deadline = time.monotonic() + RECONNECT_WAIT_S
        while not relay.sockets[1:] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert relay.sockets[1:], "the client did not reconnect"

        producer.produce(topic, b"after the outage")
        assert producer.flush(30) == 0
    finally:
        relay.close()

    assert not _client_errors(caplog, logging.WARNING)
    stale = _client_errors(caplog, logging.DEBUG)
    assert any("brokers are down" in e or str(relay_port) in e for e in stale)


def test_an_outage_is_reported_while_the_client_is_in_use(
    settings: Settings, relay_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="switchboard.kafka")
    producer = make_producer(
        settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{relay_port}"})
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _client_errors(caplog, logging.WARNING):
        producer.poll(0.2)

    assert any(str(relay_port) in e for e in _client_errors(caplog, logging.WARNING))


def test_an_outage_of_an_idle_client_that_goes_on_is_reported_once_in_use(
    settings: Settings, relay_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The backlog is dropped, but the client, polling again, reports it anew."""
    caplog.set_level(logging.DEBUG, logger="switchboard.kafka")
    producer = make_producer(
        settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{relay_port}"})
    )
    time.sleep(IDLE_S + 1)
    producer.poll(0)
    assert _client_errors(caplog, logging.DEBUG)
    assert not _client_errors(caplog, logging.WARNING)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not _client_errors(caplog, logging.WARNING):
        producer.poll(0.2)

    assert any(str(relay_port) in e for e in _client_errors(caplog, logging.WARNING))
