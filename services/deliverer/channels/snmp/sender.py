"""Sending SNMP v2c and v3 notifications (traps and INFORMs) with pysnmp.

Each channel gets its own SNMP engine, kept while its configuration and
secrets stay the same. For SNMPv3 traps the sending engine is authoritative,
so receivers list the user under the sender's engine id: it comes from the
channel's ``engine_id`` or, by default, from the channel id, which keeps it
the same across restarts and across every deliverer process. For INFORMs the
receiver is authoritative and pysnmp discovers its engine id.

``sysUpTime.0`` is the time since this sender started, in hundredths of a
second, as an agent's uptime would be.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ipaddress
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from pyasn1.error import PyAsn1Error
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as hlapi
from pysnmp.proto import errind, rfc1902

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.snmp import classify
from services.deliverer.channels.snmp.config import Config
from services.deliverer.channels.snmp.varbinds import (
    DEFAULT_ENTERPRISE_OID,
    VarbindError,
    build_varbinds,
)
from services.deliverer.outcome import Outcome, Reason
from services.deliverer.redact import redact, secret_values
from services.deliverer.targets import refused_host
from services.deliverer.templates import TemplateError
from switchboard.settings import Settings

log = logging.getLogger(__name__)

# Exceptions sending can raise; anything else is a bug and propagates.
SNMP_ERRORS = (PySnmpError, PyAsn1Error, errind.ErrorIndication, OSError, TimeoutError)

# An INFORM is resent this many times within the attempt's deadline before it
# counts as lost (pysnmp retransmits the same request id). The tries share
# part of the deadline, so a lost INFORM is reported as such, not as the
# deadline passing.
INFORM_RETRANSMISSIONS = 2
INFORM_SHARE_OF_DEADLINE = 0.5

# Engines kept at once; each holds a UDP socket. The least recently used one
# is closed beyond this, and made again if its channel sends later.
MAX_ENGINES = 500

AUTH_PROTOCOLS = {
    "MD5": hlapi.usmHMACMD5AuthProtocol,
    "SHA": hlapi.usmHMACSHAAuthProtocol,
    "SHA224": hlapi.usmHMAC128SHA224AuthProtocol,
    "SHA256": hlapi.usmHMAC192SHA256AuthProtocol,
    "SHA384": hlapi.usmHMAC256SHA384AuthProtocol,
    "SHA512": hlapi.usmHMAC384SHA512AuthProtocol,
}
# AES192 and AES256 extend a short localized key as net-snmp does (Blumenthal
# draft); the "C" variants as Cisco does (Reeder draft). The two only differ
# when the authentication hash is shorter than the privacy key.
PRIV_PROTOCOLS = {
    "DES": hlapi.usmDESPrivProtocol,
    "AES": hlapi.usmAesCfb128Protocol,
    "AES192": hlapi.usmAesBlumenthalCfb192Protocol,
    "AES256": hlapi.usmAesBlumenthalCfb256Protocol,
    "AES192C": hlapi.usmAesCfb192Protocol,
    "AES256C": hlapi.usmAesCfb256Protocol,
}


class MissingSecret(ValueError):
    """The channel's version or security level needs a secret it does not have."""


@dataclass
class _Engine:
    fingerprint: str
    engine: hlapi.SnmpEngine


class Sender:
    """Delivers SNMP notifications; one engine per channel."""

    def __init__(self, settings: Settings) -> None:
        """Start the uptime clock; engines are made on first use."""
        self._settings = settings
        self._allow_private = settings.allow_private_targets
        self._started = time.monotonic()
        self._engines: dict[str, _Engine] = {}

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """Send the notification of ``command``; INFORMs wait for the answer."""
        config: Config = channel.config
        try:
            varbinds = build_varbinds(
                command, config, self._uptime_ticks(), channel.name
            )
            auth = auth_data(config, channel.secrets)
        except TemplateError as error:
            return Outcome.permanent(Reason.TEMPLATE_ERROR, str(error))
        except (VarbindError, MissingSecret) as error:
            return Outcome.permanent(Reason.INVALID_CONFIG, str(error))
        # Checked at every send: the host may resolve elsewhere now than when
        # the channel was saved.
        refused = await refused_host(config.host, self._allow_private)
        if refused is not None:
            return refused

        try:
            async with asyncio.timeout(config.timeout_s):
                result = await self._notify(channel, auth, varbinds)
        except SNMP_ERRORS as error:
            return _scrubbed(classify.outcome_for(error), channel)
        outcome = classify.outcome_for_result(*result)
        log.debug(
            "snmp notification sent",
            extra={"job_id": command["job_id"], "channel": channel.id},
        )
        return _scrubbed(outcome, channel)

    async def close(self) -> None:
        """Close every engine's sockets."""
        engines, self._engines = list(self._engines.values()), {}
        for entry in engines:
            entry.engine.close_dispatcher()

    async def _notify(
        self, channel: ResolvedChannel, auth: Any, varbinds: list[tuple[str, Any]]
    ) -> tuple[object, object]:
        config: Config = channel.config
        inform = config.notification == "inform"
        target = await transport_target(
            config.host,
            config.port,
            timeout_s=config.timeout_s
            * INFORM_SHARE_OF_DEADLINE
            / (INFORM_RETRANSMISSIONS + 1),
            retries=INFORM_RETRANSMISSIONS if inform else 0,
        )
        indication, status, _, _ = await hlapi.send_notification(
            self._engine(channel),
            auth,
            target,
            hlapi.ContextData(),
            config.notification,
            *varbinds,
            lookupMib=False,
        )
        return indication, status

    def _engine(self, channel: ResolvedChannel) -> hlapi.SnmpEngine:
        fingerprint = _fingerprint(channel)
        entry = self._engines.pop(channel.id, None)
        if entry is not None and entry.fingerprint == fingerprint:
            self._engines[channel.id] = entry  # Now the most recently used.
            return entry.engine
        if entry is not None:
            entry.engine.close_dispatcher()
        if len(self._engines) >= MAX_ENGINES:
            oldest = next(iter(self._engines))
            self._engines.pop(oldest).engine.close_dispatcher()
        engine_id = channel.config.engine_id or engine_id_for(
            channel.id, channel.config.enterprise_oid
        )
        engine = hlapi.SnmpEngine(snmpEngineID=rfc1902.OctetString(hexValue=engine_id))
        self._engines[channel.id] = _Engine(fingerprint, engine)
        return engine

    def _uptime_ticks(self) -> int:
        return int((time.monotonic() - self._started) * 100)


async def transport_target(host: str, port: int, timeout_s: float, retries: int) -> Any:
    """A UDP target over IPv4, or IPv6 for an IPv6 address or an IPv6-only name.

    pysnmp's UDP target resolves IPv4 addresses only, so without the IPv6 one
    a receiver on an IPv6 network would fail every attempt.
    """
    options = {"timeout": timeout_s, "retries": retries}
    if _is_ipv6(host):
        address = host.strip("[]")
        return await hlapi.Udp6TransportTarget.create((address, port), **options)
    try:
        return await hlapi.UdpTransportTarget.create((host, port), **options)
    except PySnmpError as error:
        try:
            return await hlapi.Udp6TransportTarget.create((host, port), **options)
        except PySnmpError:
            raise error from None


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host.strip("[]"))
    except ValueError:
        return False
    return True


def engine_id_for(channel_id: str, enterprise_oid: str = DEFAULT_ENTERPRISE_OID) -> str:
    """The default SNMPv3 engine id of a channel, in hex (RFC 3411 format 5).

    Enterprise number with the high bit set, format octet 5 (administratively
    assigned octets), then eight octets derived from the channel id.
    """
    arcs = enterprise_oid.split(".")
    is_pen = enterprise_oid.startswith("1.3.6.1.4.1.") and len(arcs) > 6
    number = int(arcs[6]) if is_pen else int(DEFAULT_ENTERPRISE_OID.rsplit(".", 1)[1])
    prefix = (0x80000000 | number).to_bytes(4, "big") + b"\x05"
    return (prefix + hashlib.sha256(channel_id.encode()).digest()[:8]).hex().upper()


def auth_data(config: Config, secrets: Any) -> Any:
    """pysnmp credentials for the channel; MissingSecret if one is absent."""
    if config.version == "v2c":
        community = getattr(secrets, "community", None)
        if not community:
            raise MissingSecret("SNMP v2c needs a community")
        return hlapi.CommunityData(community, mpModel=1)
    auth_key = getattr(secrets, "auth_key", None)
    priv_key = getattr(secrets, "priv_key", None)
    if config.auth_protocol and not auth_key:
        raise MissingSecret("SNMPv3 authentication needs auth_key")
    if config.priv_protocol and not priv_key:
        raise MissingSecret("SNMPv3 privacy needs priv_key")
    return hlapi.UsmUserData(
        config.username,
        authKey=auth_key if config.auth_protocol else None,
        privKey=priv_key if config.priv_protocol else None,
        authProtocol=AUTH_PROTOCOLS.get(config.auth_protocol, hlapi.usmNoAuthProtocol),
        privProtocol=PRIV_PROTOCOLS.get(config.priv_protocol, hlapi.usmNoPrivProtocol),
    )


def _fingerprint(channel: ResolvedChannel) -> str:
    # A digest of everything that shapes the engine's configuration, so a
    # changed key or target gets a fresh engine and nothing secret is kept.
    secrets = channel.secrets.model_dump(mode="json") if channel.secrets else None
    material = json.dumps([channel.config.model_dump(mode="json"), secrets])
    return hashlib.sha256(material.encode()).hexdigest()


def _scrubbed(outcome: Outcome, channel: ResolvedChannel) -> Outcome:
    if not outcome.error:
        return outcome
    error = redact(outcome.error, secret_values(channel.secrets))
    return dataclasses.replace(outcome, error=error)
