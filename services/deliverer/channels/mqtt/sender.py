"""Publishing to MQTT brokers, one connection per broker and credentials.

A connection stays open across jobs. When the broker has closed it since the
last publish (restart, idle limit), the publish fails with "not connected"
before anything was sent; the sender then connects afresh and publishes once,
which is reconnecting, not retrying. Any other failure discards the
connection, so the next attempt starts clean.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import math
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.mqtt import classify
from services.deliverer.channels.mqtt.config import Config
from services.deliverer.channels.mqtt.message import (
    Publication,
    TopicError,
    build_publication,
)
from services.deliverer.outcome import Outcome, Reason
from services.deliverer.redact import redact, secret_values
from services.deliverer.targets import refused_host
from services.deliverer.templates import TemplateError
from services.deliverer.tls import client_context
from switchboard.settings import Settings

log = logging.getLogger(__name__)

# Exceptions a broker connection can raise; anything else is a bug and propagates.
MQTT_ERRORS = (aiomqtt.MqttError, OSError, TimeoutError)

# Waiting for DISCONNECT to be acknowledged when a connection is discarded.
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class BrokerKey:
    """What makes two channels able to share one broker connection."""

    host: str
    port: int
    tls: bool
    verify_certificate: bool
    ca_certificate_pem: str | None
    username: str | None
    password_digest: str | None = field(repr=False)


@dataclass
class _Broker:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: aiomqtt.Client | None = None


class Sender:
    """Delivers MQTT notifications; see the module docstring for reuse."""

    def __init__(self, settings: Settings) -> None:
        """Start with no connections; they open on first use."""
        self._settings = settings
        self._allow_private = settings.allow_private_targets
        self._brokers: dict[BrokerKey, _Broker] = {}

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """Publish the notification of ``command`` and wait for the broker's ack."""
        config: Config = channel.config
        password = getattr(channel.secrets, "password", None)
        if password and not config.username:
            return Outcome.permanent(
                Reason.INVALID_CONFIG, "password set without username"
            )

        try:
            publication = build_publication(
                command, config.topic_template, channel.name
            )
        except TemplateError as error:
            return Outcome.permanent(Reason.TEMPLATE_ERROR, str(error))
        except TopicError as error:
            return Outcome.permanent(Reason.INVALID_CONFIG, str(error))
        # Checked at every send, also over a kept connection: the host may
        # resolve elsewhere now than when the channel was saved.
        refused = await refused_host(config.host, self._allow_private)
        if refused is not None:
            return refused

        broker = self._brokers.setdefault(_broker_key(config, password), _Broker())
        try:
            async with asyncio.timeout(config.timeout_s):
                await self._publish(broker, config, password, publication)
        except MQTT_ERRORS as error:
            return _scrubbed(classify.outcome_for(error), channel)
        log.debug(
            "mqtt published",
            extra={"job_id": command["job_id"], "channel": channel.id},
        )
        return Outcome.delivered()

    async def close(self) -> None:
        """Disconnect from every broker."""
        brokers, self._brokers = list(self._brokers.values()), {}
        for broker in brokers:
            await _discard(broker, broker.client)

    async def _publish(
        self,
        broker: _Broker,
        config: Config,
        password: str | None,
        message: Publication,
    ) -> None:
        client, fresh = await _connected(broker, config, password)
        try:
            await _acknowledged(client, config, message)
        except ConnectionLost:
            await _discard(broker, client)
            if fresh:
                raise
            # The broker closed the kept connection (a restart, an idle limit)
            # before acknowledging: connect again and publish once more.
            await self._publish_fresh(broker, config, password, message)
        except BaseException:
            # Includes the deadline's cancellation: a publish may be half done.
            await _discard(broker, client)
            raise

    async def _publish_fresh(
        self,
        broker: _Broker,
        config: Config,
        password: str | None,
        message: Publication,
    ) -> None:
        client, _ = await _connected(broker, config, password)
        try:
            await _acknowledged(client, config, message)
        except BaseException:
            await _discard(broker, client)
            raise


class ConnectionLost(aiomqtt.MqttError):
    """The connection closed before the broker acknowledged a publish."""


async def _acknowledged(
    client: aiomqtt.Client, config: Config, message: Publication
) -> None:
    """Publish and return once the broker has it; ConnectionLost if it went away.

    aiomqtt returns once paho's on_publish fired: after PUBACK (QoS 1), after
    PUBCOMP (QoS 2), after the write (QoS 0). If the connection drops meanwhile
    it would wait for the deadline, so the wait also watches the client's
    disconnection future (the same one aiomqtt's message iterator watches).
    """
    publish = asyncio.ensure_future(
        client.publish(
            message.topic,
            message.payload,
            qos=config.qos,
            retain=config.retain,
            timeout=math.inf,
        )
    )
    disconnected: asyncio.Future[None] = client._disconnected
    try:
        await asyncio.wait({publish, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        publish.cancel()
    if publish.done() and not publish.cancelled() and publish.exception() is None:
        return
    if disconnected.done():
        raise ConnectionLost("connection closed before the broker acknowledged")
    error = publish.exception()
    if isinstance(error, aiomqtt.MqttCodeError) and error.rc == paho.MQTT_ERR_NO_CONN:
        raise ConnectionLost(str(error)) from error
    raise error


async def _connected(
    broker: _Broker, config: Config, password: str | None
) -> tuple[aiomqtt.Client, bool]:
    """The broker's open client, connecting first if there is none."""
    async with broker.lock:
        if broker.client is not None:
            return broker.client, False
        client = _client(config, password)
        await client.__aenter__()
        _settle(client)
        broker.client = client
        return client, True


async def _discard(broker: _Broker, client: aiomqtt.Client | None) -> None:
    """Forget ``client`` if it is still the broker's, and disconnect it."""
    if client is None:
        return
    if broker.client is client:
        broker.client = None
    try:
        await asyncio.wait_for(client.__aexit__(None, None, None), CLOSE_TIMEOUT_S)
    except (*MQTT_ERRORS, asyncio.CancelledError):
        pass  # The connection is gone either way.


def _settle(client: aiomqtt.Client) -> None:
    """Mark a lost connection's error as seen, now or whenever it happens.

    The sender learns of a lost connection from a failed publish, not from
    this future; unseen, asyncio would report its exception at exit.
    """
    client._disconnected.add_done_callback(_seen)


def _seen(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _client(config: Config, password: str | None) -> aiomqtt.Client:
    tls = client_context(config.verify_certificate, config.ca_certificate_pem)
    return aiomqtt.Client(
        hostname=config.host,
        port=config.port,
        username=config.username,
        password=password,
        identifier=f"switchboard-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        timeout=config.timeout_s,
        tls_context=tls if config.tls else None,
        tls_insecure=(not config.verify_certificate) if config.tls else None,
        clean_session=True,
    )


def _broker_key(config: Config, password: str | None) -> BrokerKey:
    # A digest, so a changed password opens a new connection and the key holds
    # nothing that could leak if it were ever printed.
    digest = hashlib.sha256(password.encode()).hexdigest() if password else None
    return BrokerKey(
        config.host,
        config.port,
        config.tls,
        config.verify_certificate,
        config.ca_certificate_pem,
        config.username,
        digest,
    )


def _scrubbed(outcome: Outcome, channel: ResolvedChannel) -> Outcome:
    if not outcome.error:
        return outcome
    error = redact(outcome.error, secret_values(channel.secrets))
    return dataclasses.replace(outcome, error=error)
