"""Local MQTT peers for tests and the demo: a private broker and a recorder.

:class:`MosquittoBroker` runs its own ``mosquitto`` on a free loopback port
(optionally with a password file and a TLS listener), so a test can stop and
restart it without touching the shared stack's broker. :class:`MqttRecorder`
subscribes to a topic filter and keeps every message it receives.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from services.receivers.smtp import LOOPBACK, LocalCertificate, free_tcp_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
START_TIMEOUT_S = 10.0


class MosquittoBroker:
    """A mosquitto process of our own on 127.0.0.1, stopped and restarted at will."""

    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        certificate: LocalCertificate | None = None,
    ) -> None:
        """Write the configuration into ``directory``; :meth:`start` runs it."""
        self.directory = directory
        self.port = free_tcp_port()
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._config = directory / "mosquitto.conf"
        self._config.write_text(self._config_text(users, certificate))

    def _config_text(
        self, users: dict[str, str] | None, certificate: LocalCertificate | None
    ) -> str:
        lines = ["persistence false", f"listener {self.port} {LOOPBACK}"]
        if os.geteuid() == 0:
            # As root mosquitto would switch to a user that may not exist.
            lines.insert(0, "user root")
        if users:
            lines += [
                "allow_anonymous false",
                f"password_file {self._passwords(users)}",
            ]
        else:
            lines.append("allow_anonymous true")
        if certificate is not None:
            lines += [
                f"certfile {certificate.directory / 'server.pem'}",
                f"keyfile {certificate.directory / 'key.pem'}",
            ]
        lines.append(f"log_dest file {self.directory / 'mosquitto.log'}")
        return "\n".join(lines) + "\n"

    def _passwords(self, users: dict[str, str]) -> Path:
        path = self.directory / "passwords"
        path.touch(mode=0o600)
        for user, password in users.items():
            subprocess.run(
                [MOSQUITTO_PASSWD, "-b", str(path), user, password],
                check=True,
                capture_output=True,
            )
        return path

    def start(self) -> MosquittoBroker:
        """Start the broker and wait until it accepts connections."""
        self._process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self._config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                error = (
                    self._process.stderr.read().decode() if self._process.stderr else ""
                )
                raise RuntimeError(f"mosquitto did not start: {error}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the broker (its clients see their connections closed)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((LOOPBACK, port)) == 0


# MQTT 3.1.1 fixed headers (section 2.2): CONNACK accepted; PINGRESP.
_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
_PINGRESP = b"\xd0\x00"
_PUBLISH, _PINGREQ = 3, 12


class UnacknowledgingBroker:
    """A broker that accepts connections but never acknowledges a publish.

    On PUBLISH it either stays silent (``on_publish="ignore"``) or closes the
    connection (``"close"``), so a test can show that only an acknowledged
    publish counts. Runs on the caller's event loop; an async context.
    """

    def __init__(self, on_publish: str = "ignore") -> None:
        """Choose what happens to a PUBLISH; the port is picked on entry."""
        self.on_publish = on_publish
        self.port = 0
        self.publishes = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> UnacknowledgingBroker:
        """Start listening on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            while packet := await _read_packet(reader):
                kind = packet[0] >> 4
                if kind == 1:  # CONNECT
                    writer.write(_CONNACK_ACCEPTED)
                elif kind == _PINGREQ:
                    writer.write(_PINGRESP)
                elif kind == _PUBLISH:
                    self.publishes += 1
                    if self.on_publish == "close":
                        break
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()


async def _read_packet(reader: asyncio.StreamReader) -> bytes | None:
    """One MQTT control packet: fixed header byte, remaining length, body."""
    try:
        first = await reader.readexactly(1)
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first + await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


@dataclass(frozen=True)
class RecordedMessage:
    """One message a subscriber received."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class MqttRecorder:
    """Subscribes to ``topic_filter`` and records messages; an async context."""

    def __init__(self, topic_filter: str, qos: int = 2, **client_options: Any) -> None:
        """``client_options`` go to aiomqtt.Client (hostname, port, username …)."""
        self.topic_filter = topic_filter
        self.messages: list[RecordedMessage] = []
        self._qos = qos
        self._client = aiomqtt.Client(**client_options)
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> MqttRecorder:
        """Connect and subscribe; returns once the broker granted the subscription."""
        await self._client.__aenter__()
        await self._client.subscribe(self.topic_filter, qos=self._qos)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Unsubscribe and disconnect."""
        if self._task is not None:
            self._task.cancel()
        await self._client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.messages.append(
                RecordedMessage(
                    str(message.topic), payload, message.qos, message.retain
                )
            )
            self._arrived.set()

    async def wait_for(
        self, count: int, timeout_s: float = 10.0
    ) -> list[RecordedMessage]:
        """Wait until ``count`` messages arrived (or the timeout); returns them all."""
        async with asyncio.timeout(timeout_s):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.messages)


async def _print_messages(topic_filter: str, **client_options: Any) -> None:
    async with aiomqtt.Client(**client_options) as client:
        await client.subscribe(topic_filter, qos=2)
        print(f"subscribed to {topic_filter}", flush=True)
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            print(f"{message.topic} {payload.decode('utf-8', 'replace')}", flush=True)


def main() -> None:
    """Subscribe to a topic filter and print every message until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=11883)
    parser.add_argument("--topic", default="switchboard/#")
    parser.add_argument("--username")
    parser.add_argument("--password")
    args = parser.parse_args()
    options = {"hostname": args.host, "port": args.port, "username": args.username}
    try:
        asyncio.run(_print_messages(args.topic, password=args.password, **options))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
