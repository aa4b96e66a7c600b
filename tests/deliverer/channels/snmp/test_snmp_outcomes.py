"""SNMP retry decisions per result and exception, save-time checks, and the MIB."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from pyasn1.type.error import ValueConstraintError
from pydantic import ValidationError
from pysnmp.error import PySnmpError
from pysnmp.proto import errind

from services.deliverer.channels.snmp import classify
from services.deliverer.channels.snmp.config import Config
from services.deliverer.channels.snmp.varbinds import (
    ALERT_OBJECTS,
    DEFAULT_ENTERPRISE_OID,
    NOTIFICATION_NUMBER,
)
from services.deliverer.outcome import OutcomeKind, Reason
from switchboard.settings import PROJECT_ROOT

RETRYABLE, PERMANENT, DELIVERED = (
    OutcomeKind.RETRYABLE,
    OutcomeKind.PERMANENT,
    OutcomeKind.DELIVERED,
)
MIB = PROJECT_ROOT / "mibs" / "SWITCHBOARD-MIB.txt"

RESULT_TABLE = [
    ((None, 0), DELIVERED, Reason.DELIVERED),
    ((errind.requestTimedOut, 0), RETRYABLE, Reason.NOT_ACKNOWLEDGED),
    ((errind.notInTimeWindow, 0), RETRYABLE, Reason.NOT_ACKNOWLEDGED),
    ((errind.unknownEngineID, 0), RETRYABLE, Reason.NOT_ACKNOWLEDGED),
    ((errind.unknownUserName, 0), PERMANENT, Reason.INVALID_CONFIG),
    ((errind.wrongDigest, 0), PERMANENT, Reason.INVALID_CONFIG),
    ((errind.decryptionError, 0), PERMANENT, Reason.INVALID_CONFIG),
    ((errind.unsupportedSecurityLevel, 0), PERMANENT, Reason.INVALID_CONFIG),
    ((errind.unknownCommunityName, 0), PERMANENT, Reason.INVALID_CONFIG),
    ((errind.tooBig, 0), PERMANENT, Reason.PAYLOAD_REJECTED),
    ((errind.serializationError, 0), PERMANENT, Reason.PAYLOAD_REJECTED),
    ((None, 5), PERMANENT, Reason.PAYLOAD_REJECTED),  # genErr in the response
]


@pytest.mark.parametrize(("result", "kind", "reason"), RESULT_TABLE)
def test_every_result_is_mapped(result, kind, reason):
    outcome = classify.outcome_for_result(*result)

    assert (outcome.kind, outcome.reason) == (kind, reason)


def _with_cause(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


EXCEPTION_TABLE = [
    (TimeoutError(), RETRYABLE, Reason.TIMEOUT),
    (OSError("network unreachable"), RETRYABLE, Reason.CONNECTION_ERROR),
    (
        socket.gaierror(-2, "Name or service not known"),
        RETRYABLE,
        Reason.CONNECTION_ERROR,
    ),
    (
        _with_cause(
            PySnmpError("Bad IPv4/UDP transport address x@162"),
            socket.gaierror(-2, "x"),
        ),
        RETRYABLE,
        Reason.CONNECTION_ERROR,
    ),
    (PySnmpError("Unknown notification type"), PERMANENT, Reason.INVALID_CONFIG),
    (ValueConstraintError("out of range"), PERMANENT, Reason.INVALID_CONFIG),
    (errind.RequestTimedOut("raised"), RETRYABLE, Reason.NOT_ACKNOWLEDGED),
]


@pytest.mark.parametrize(("error", "kind", "reason"), EXCEPTION_TABLE)
def test_every_library_exception_is_mapped(error, kind, reason):
    outcome = classify.outcome_for(error)

    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert outcome.error


def extra(oid: str, snmp_type: str, value: str) -> dict[str, str]:
    return {"oid": oid, "type": snmp_type, "value": value}


E = DEFAULT_ENTERPRISE_OID


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"extra_varbinds": [extra(f"{E}.3.1", "Integer32", "abc")]}, "Integer32"),
        (
            {"extra_varbinds": [extra(f"{E}.3.1", "Integer32", "2147483648")]},
            "Integer32",
        ),
        ({"extra_varbinds": [extra(f"{E}.3.1", "Unsigned32", "-1")]}, "Unsigned32"),
        (
            {"extra_varbinds": [extra(f"{E}.3.1", "IpAddress", "300.1.1.1")]},
            "IpAddress",
        ),
        (
            {"extra_varbinds": [extra(f"{E}.3.1", "ObjectIdentifier", "x.y")]},
            "Identifier",
        ),
        ({"extra_varbinds": [extra(f"{E}.3.1", "Float", "1.5")]}, "type"),
        ({"extra_varbinds": [extra(f"{E}.3.1", "Integer32", "{{ nope }}")]}, "nope"),
        (
            {"extra_varbinds": [extra(f"{E}.1.1.6.0", "OctetString", "x")]},
            "fixed types",
        ),
        ({"extra_varbinds": [extra(f"{E}.0.1", "ObjectIdentifier", "1.3")]}, "fixed"),
        (
            {"extra_varbinds": [extra("1.3.6.1.2.1.1.3.0", "TimeTicks", "1")]},
            "sysUpTime",
        ),
        (
            {"extra_varbinds": [extra("1.3.6.1.6.3.1.1.4.1.0", "OctetString", "x")]},
            "snmpTrapOID",
        ),
        (
            {"extra_varbinds": [extra(f"{E}.3.1", "Integer32", "1")] * 2},
            "twice",
        ),
        ({"extra_varbinds": [extra("1.3.six", "Integer32", "1")]}, "OID"),
        ({"enterprise_oid": "1.3.6.1.4.1."}, "OID"),
        ({"version": "v3"}, "username"),
        ({"version": "v3", "username": "u", "priv_protocol": "AES"}, "authentication"),
        ({"engine_id": "xyz"}, "engine_id"),
        ({"auth_protocol": "SHA1"}, "auth_protocol"),
    ],
)
def test_bad_configuration_is_refused_when_saved(fields, problem):
    with pytest.raises(ValidationError) as raised:
        Config.model_validate({"host": "nms.example.com", **fields})

    assert problem in str(raised.value)


def test_valid_extra_varbinds_are_accepted():
    config = Config.model_validate(
        {
            "host": "nms.example.com",
            "extra_varbinds": [
                extra(f"{E}.3.1.0", "Gauge32", "4294967295"),
                extra(f"{E}.3.2.0", "ObjectIdentifier", "1.3.6.1.4.1.8072"),
                extra(f"{E}.3.3.0", "IpAddress", "{{ labels.ip }}"),
            ],
        }
    )

    assert len(config.extra_varbinds) == 3


def mib_assignments(text: str) -> dict[str, tuple[str, int]]:
    """``name -> (parent, number)`` for every ``::= { parent n }`` in the MIB."""
    pattern = r"^(\w+)\s+(?:OBJECT|NOTIFICATION)-TYPE.*?::=\s*\{\s*(\w+)\s+(\d+)\s*\}"
    found = re.findall(pattern, text, re.M | re.S)
    return {name: (parent, int(number)) for name, parent, number in found}


def test_mib_agrees_with_the_sender():
    text = MIB.read_text()
    assignments = mib_assignments(text)

    assert text.isascii()
    assert "{ enterprises 99999 }" in text
    assert DEFAULT_ENTERPRISE_OID == "1.3.6.1.4.1.99999"
    for item in ALERT_OBJECTS:
        assert assignments[item.name] == ("swAlert", item.number), item.name
    notifications = {
        "swAlertOpened": NOTIFICATION_NUMBER["OPEN"],
        "swAlertAcknowledged": NOTIFICATION_NUMBER["ACKNOWLEDGED"],
        "swAlertClosed": NOTIFICATION_NUMBER["CLOSED"],
    }
    for name, number in notifications.items():
        assert assignments[name] == ("swNotifications", number)
    object_list = re.search(
        r"swAlertOpened NOTIFICATION-TYPE\s+OBJECTS \{([^}]*)\}", text
    )
    listed = [name.strip() for name in object_list.group(1).split(",")]
    assert listed == [item.name for item in ALERT_OBJECTS]


def test_mib_ships_with_the_package():
    assert Path(MIB).exists()
