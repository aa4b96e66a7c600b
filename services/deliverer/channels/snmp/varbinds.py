"""Building the varbinds of one SNMP notification, as SWITCHBOARD-MIB defines them.

The PDU carries ``sysUpTime.0`` and ``snmpTrapOID.0`` first, once each
(RFC 3416 section 4.2.6), then the alert objects in the MIB's order, then the
channel's extra varbinds in the order configured. The notification OID says
what happened (opened, acknowledged, closed). Text objects are UTF-8 and cut
to their MIB size with a visible marker, never inside a character.

Layout under the enterprise OID (``mibs/SWITCHBOARD-MIB.txt``)::

    <enterprise>.0.N        notifications: 1 opened, 2 acknowledged, 3 closed
    <enterprise>.1.1.N.0    alert objects, N as in ALERT_OBJECTS
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyasn1.error import PyAsn1Error
from pysnmp.proto import rfc1902

from services.deliverer import templates
from services.deliverer.text import truncate_utf8

# Placeholder private enterprise number (IANA has not assigned 99999 to anyone
# we know of); operators with their own number set enterprise_oid. Documented
# in mibs/SWITCHBOARD-MIB.txt.
DEFAULT_ENTERPRISE_OID = "1.3.6.1.4.1.99999"

SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"  # SNMPv2-MIB::sysUpTime.0
SNMP_TRAP_OID_OID = "1.3.6.1.6.3.1.1.4.1.0"  # SNMPv2-MIB::snmpTrapOID.0
_STANDARD_PREFIXES = ("1.3.6.1.6.3.1.1.4", "1.3.6.1.2.1.1.3")

NOTIFICATIONS_ARC = 0
ALERT_OBJECTS_ARCS = "1.1"
NOTIFICATION_NUMBER = {"OPEN": 1, "ACKNOWLEDGED": 2, "CLOSED": 3}
SEVERITY_NUMBER = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "LOW": 4, "INFO": 5}
EVENT_KIND_NUMBER = {"OPEN": 1, "ACKNOWLEDGED": 2, "CLOSED": 3}
TRUTH_VALUE = {True: 1, False: 2}  # SNMPv2-TC TruthValue

# SnmpAdminString is at most 255 octets (SNMP-FRAMEWORK-MIB); SwLongText 1024.
MAX_SHORT_TEXT_BYTES = 255
MAX_LONG_TEXT_BYTES = 1024

SNMP_TYPES = (
    "OctetString",
    "Integer32",
    "Unsigned32",
    "Counter32",
    "Gauge32",
    "Counter64",
    "TimeTicks",
    "IpAddress",
    "ObjectIdentifier",
)


_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")

# Arcs under the enterprise OID that SWITCHBOARD-MIB defines with fixed types;
# customers put their own objects elsewhere (the MIB suggests swCustom, .3).
RESERVED_ARCS = {"0": "notifications", "1": "alert objects", "2": "conformance"}


class VarbindError(ValueError):
    """A value that does not fit the SNMP type declared for its OID."""


def check_oid(value: str) -> str:
    """``value`` if it is a dotted numeric OID; ValueError otherwise."""
    if not _OID.match(value):
        raise ValueError(f"not a well-formed OID: {value!r}")
    return value


@dataclass(frozen=True)
class AlertObject:
    """One object of SWITCHBOARD-MIB's swAlert group."""

    number: int
    name: str
    value: Callable[[dict[str, Any]], Any]  # The value from a DeliveryCommand.


Extractor = Callable[[dict[str, Any]], Any]


def _alert_text(field: str, limit: int = MAX_SHORT_TEXT_BYTES) -> Extractor:
    def value(command: dict[str, Any]) -> rfc1902.OctetString:
        raw = command["alert"].get(field)
        return _octets("" if raw is None else str(raw), limit)

    return value


def _job_text(field: str) -> Extractor:
    return lambda command: _octets(str(command[field]), MAX_SHORT_TEXT_BYTES)


def _alert_enum(field: str, numbers: dict[str, int]) -> Extractor:
    return lambda command: rfc1902.Integer32(numbers[str(command["alert"][field])])


def _octets(text: str, limit: int) -> rfc1902.OctetString:
    return rfc1902.OctetString(truncate_utf8(text, limit).encode("utf-8"))


def _labels(command: dict[str, Any]) -> rfc1902.OctetString:
    labels = command["alert"].get("labels") or {}
    text = "; ".join(f"{key}={labels[key]}" for key in sorted(labels))
    return _octets(text, MAX_LONG_TEXT_BYTES)


def _occurred_at(command: dict[str, Any]) -> rfc1902.OctetString:
    return date_and_time(command["alert"]["occurred_at"])


def _attempt(command: dict[str, Any]) -> rfc1902.Unsigned32:
    return rfc1902.Unsigned32(command["attempt"])


def _is_test(command: dict[str, Any]) -> rfc1902.Integer32:
    return rfc1902.Integer32(TRUTH_VALUE[bool(command.get("is_test"))])


def date_and_time(moment: datetime) -> rfc1902.OctetString:
    """SNMPv2-TC DateAndTime, 11 octets, in UTC (RFC 2579)."""
    utc = moment.astimezone(UTC)
    fields = [utc.month, utc.day, utc.hour, utc.minute, utc.second]
    deciseconds = utc.microsecond // 100_000
    octets = utc.year.to_bytes(2, "big") + bytes([*fields, deciseconds])
    return rfc1902.OctetString(octets + b"+\x00\x00")


ALERT_OBJECTS: tuple[AlertObject, ...] = (
    AlertObject(1, "swJobId", _job_text("job_id")),
    AlertObject(2, "swEventId", _alert_text("event_id")),
    AlertObject(3, "swTenantId", _alert_text("tenant_id")),
    AlertObject(4, "swAlertId", _alert_text("alert_id")),
    AlertObject(5, "swEventKind", _alert_enum("kind", EVENT_KIND_NUMBER)),
    AlertObject(6, "swSeverity", _alert_enum("severity", SEVERITY_NUMBER)),
    AlertObject(7, "swAlertType", _alert_text("alert_type")),
    AlertObject(8, "swSiteId", _alert_text("site_id")),
    AlertObject(9, "swDeviceId", _alert_text("device_id")),
    AlertObject(10, "swSummary", _alert_text("summary")),
    AlertObject(11, "swDetails", _alert_text("details", MAX_LONG_TEXT_BYTES)),
    AlertObject(12, "swSource", _alert_text("source")),
    AlertObject(13, "swOccurredAt", _occurred_at),
    AlertObject(14, "swLabels", _labels),
    AlertObject(15, "swAttempt", _attempt),
    AlertObject(16, "swIsTest", _is_test),
    AlertObject(17, "swChannelId", _job_text("channel_id")),
)


def notification_oid(enterprise_oid: str, kind: str) -> str:
    """The NOTIFICATION-TYPE OID for an event kind."""
    return f"{enterprise_oid}.{NOTIFICATIONS_ARC}.{NOTIFICATION_NUMBER[str(kind)]}"


def alert_object_oid(enterprise_oid: str, number: int) -> str:
    """The instance OID (``.0``) of alert object ``number``."""
    return f"{enterprise_oid}.{ALERT_OBJECTS_ARCS}.{number}.0"


def build_varbinds(
    command: dict[str, Any], config: Any, uptime_ticks: int, channel_name: str = ""
) -> list[tuple[str, Any]]:
    """Every varbind of the notification for ``command``, in PDU order.

    Raises :class:`VarbindError` when an extra varbind's value does not fit its
    type and :class:`~services.deliverer.templates.TemplateError` when its
    template fails.
    """
    enterprise = config.enterprise_oid
    varbinds: list[tuple[str, Any]] = [
        (SYS_UPTIME_OID, rfc1902.TimeTicks(uptime_ticks % 2**32)),
        (
            SNMP_TRAP_OID_OID,
            rfc1902.ObjectIdentifier(
                notification_oid(enterprise, command["alert"]["kind"])
            ),
        ),
    ]
    for item in ALERT_OBJECTS:
        varbinds.append(
            (alert_object_oid(enterprise, item.number), item.value(command))
        )
    context = templates.alert_context(command, channel_name)
    for extra in config.extra_varbinds:
        text = (
            templates.render(extra.value, context)
            if is_template(extra.value)
            else extra.value
        )
        varbinds.append((extra.oid, _checked(extra.oid, extra.type, text)))
    return varbinds


def _checked(oid: str, snmp_type: str, text: str) -> Any:
    try:
        return typed_value(snmp_type, text)
    except VarbindError as error:
        raise VarbindError(f"extra varbind {oid}: {error}") from None


def is_template(value: str) -> bool:
    """Whether a configured value is a Jinja2 template rather than literal text."""
    return "{{" in value or "{%" in value


def typed_value(snmp_type: str, text: str) -> Any:
    """``text`` as a value of ``snmp_type``; VarbindError if it does not fit."""
    convert = _CONVERTERS.get(snmp_type)
    if convert is None:
        raise VarbindError(f"unknown SNMP type {snmp_type!r}")
    try:
        return convert(text.strip() if snmp_type != "OctetString" else text)
    except (ValueError, PyAsn1Error):
        raise VarbindError(f"{text!r} is not a valid {snmp_type}") from None


def _integer(text: str) -> int:
    if not text.lstrip("-").isdigit():
        raise ValueError(text)
    return int(text)


def _ip(text: str) -> rfc1902.IpAddress:
    return rfc1902.IpAddress(str(ipaddress.IPv4Address(text)))


def _oid(text: str) -> rfc1902.ObjectIdentifier:
    return rfc1902.ObjectIdentifier(check_oid(text.removeprefix(".")))


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "OctetString": lambda t: _octets(t, MAX_LONG_TEXT_BYTES),
    "Integer32": lambda t: rfc1902.Integer32(_integer(t)),
    "Unsigned32": lambda t: rfc1902.Unsigned32(_integer(t)),
    "Counter32": lambda t: rfc1902.Counter32(_integer(t)),
    "Gauge32": lambda t: rfc1902.Gauge32(_integer(t)),
    "Counter64": lambda t: rfc1902.Counter64(_integer(t)),
    "TimeTicks": lambda t: rfc1902.TimeTicks(_integer(t)),
    "IpAddress": _ip,
    "ObjectIdentifier": _oid,
}


def reserved_reason(oid: str, enterprise_oid: str) -> str | None:
    """Why an extra varbind may not use ``oid``, or None if it may."""
    if any(oid == p or oid.startswith(p + ".") for p in _STANDARD_PREFIXES):
        return "sysUpTime and snmpTrapOID are set by Switchboard"
    for arc, what in RESERVED_ARCS.items():
        root = f"{enterprise_oid}.{arc}"
        if oid == root or oid.startswith(root + "."):
            return f"{root} holds SWITCHBOARD-MIB {what} with fixed types"
    return None
