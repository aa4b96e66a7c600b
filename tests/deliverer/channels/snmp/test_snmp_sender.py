"""The SNMP sender against net-snmp's snmptrapd: PDU layout, types, v2c and v3."""

from __future__ import annotations

import logging
import socket

import pytest

from services.deliverer.channels.snmp.config import Config
from services.deliverer.channels.snmp.sender import Sender
from services.deliverer.channels.snmp.varbinds import ALERT_OBJECTS
from services.deliverer.outcome import OutcomeKind, Reason
from services.deliverer.text import TRUNCATION_MARKER
from services.receivers.snmp import TrapReceiver, free_udp_port
from switchboard.settings import Settings
from tests.deliverer.channels.vendor_channels import LOOPBACK_SETTINGS, private_hosts

COMMUNITY = "n0c-community-7f3a"
AUTH_KEY, PRIV_KEY = "auth-key-5c1e9d", "priv-key-b7a204"
ENTERPRISE = "1.3.6.1.4.1.99999"
SYS_UPTIME, SNMP_TRAP_OID = "1.3.6.1.2.1.1.3.0", "1.3.6.1.6.3.1.1.4.1.0"


def alert_oid(number: int) -> str:
    return f"{ENTERPRISE}.1.1.{number}.0"


# net-snmp's names for the types each alert object must arrive with.
EXPECTED_TYPES = {
    1: "STRING", 2: "STRING", 3: "STRING", 4: "STRING", 5: "INTEGER", 6: "INTEGER",
    7: "STRING", 8: "STRING", 9: "STRING", 10: "STRING", 11: "STRING", 12: "STRING",
    13: "Hex-STRING", 14: "STRING", 15: "Gauge32", 16: "INTEGER", 17: "STRING",
}  # fmt: skip


async def test_v2c_trap_layout_and_types(receiver, sender, make_command, make_channel):
    command = make_command()

    outcome = await sender.send(command, make_channel(receiver.port))

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    (trap,) = receiver.wait_for(1)
    assert "SNMP v2c" in trap.security
    oids = [v.oid for v in trap.varbinds]
    assert oids == [SYS_UPTIME, SNMP_TRAP_OID] + [
        alert_oid(o.number) for o in ALERT_OBJECTS
    ]
    assert trap.varbinds[0].type == "Timeticks"
    assert trap.get(SNMP_TRAP_OID).value == f".{ENTERPRISE}.0.1"
    types = {n: trap.get(alert_oid(n)).type for n in EXPECTED_TYPES}
    assert types == EXPECTED_TYPES
    assert trap.get(alert_oid(1)).text == command["job_id"]
    assert trap.get(alert_oid(5)).number == 1  # open
    assert trap.get(alert_oid(6)).number == 1  # critical
    assert trap.get(alert_oid(10)).text == "Link down on router-7"
    assert trap.get(alert_oid(13)).octets == bytes.fromhex("07EA03010C1E2D062B0000")
    assert trap.get(alert_oid(14)).text == "ip=192.0.2.17; region=eu-west"
    assert trap.get(alert_oid(15)).number == 1
    assert trap.get(alert_oid(16)).number == 2  # TruthValue false


async def test_notification_oid_follows_the_event_kind(
    receiver, sender, make_command, make_channel
):
    channel = make_channel(receiver.port)

    for kind in ("OPEN", "ACKNOWLEDGED", "CLOSED"):
        await sender.send(make_command(kind=kind, severity="INFO"), channel)

    traps = receiver.wait_for(3)
    assert [t.get(SNMP_TRAP_OID).value for t in traps] == [
        f".{ENTERPRISE}.0.{n}" for n in (1, 2, 3)
    ]
    assert [t.get(alert_oid(5)).number for t in traps] == [1, 2, 3]
    assert {t.get(alert_oid(6)).number for t in traps} == {5}


async def test_unicode_text_arrives_exactly_and_long_text_is_cut_visibly(
    receiver, sender, make_command, make_channel
):
    summary = "Überhitzung im Rechenzentrum 東京 🔥"
    details = "温度" * 1000

    await sender.send(
        make_command(summary=summary, details=details), make_channel(receiver.port)
    )

    (trap,) = receiver.wait_for(1)
    assert trap.get(alert_oid(10)).text == summary
    cut = trap.get(alert_oid(11)).octets
    assert len(cut) <= 1024
    assert cut.decode("utf-8").endswith(TRUNCATION_MARKER)


# The v3 users the receiver fixture configures: channel auth and priv protocols.
V3_CHANNELS = {
    "sb-sha-aes": ("SHA", "AES"),
    "sb-sha256-aes256": ("SHA256", "AES256"),
    "sb-sha-aes256": ("SHA", "AES256"),
}


@pytest.mark.parametrize("user", sorted(V3_CHANNELS))
async def test_v3_trap_with_authentication_and_privacy(
    receiver, sender, make_command, make_channel, user, caplog
):
    caplog.set_level(logging.DEBUG)
    auth, priv = V3_CHANNELS[user]
    channel = make_channel(
        receiver.port,
        secrets={"auth_key": AUTH_KEY, "priv_key": PRIV_KEY},
        version="v3",
        username=user,
        auth_protocol=auth,
        priv_protocol=priv,
    )
    command = make_command()

    outcome = await sender.send(command, channel)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    (trap,) = receiver.wait_for(1)
    assert f"SNMP v3, user {user}" in trap.security
    assert trap.get(alert_oid(1)).text == command["job_id"]
    assert AUTH_KEY not in caplog.text and PRIV_KEY not in caplog.text


async def test_v3_traps_survive_a_sender_restart(receiver, make_command, make_channel):
    # A new process starts a new engine with the same id and boot counter.
    channel = make_channel(
        receiver.port,
        secrets={"auth_key": AUTH_KEY, "priv_key": PRIV_KEY},
        version="v3",
        username="sb-sha-aes",
        auth_protocol="SHA",
        priv_protocol="AES",
    )

    for _ in range(2):
        sender = Sender(LOOPBACK_SETTINGS)
        outcome = await sender.send(make_command(), channel)
        await sender.close()
        assert outcome.kind is OutcomeKind.DELIVERED

    assert len(receiver.wait_for(2)) == 2


def v3_inform_channel(make_channel, port: int, user: str, auth_key: str):
    return make_channel(
        port,
        secrets={"auth_key": auth_key, "priv_key": PRIV_KEY},
        version="v3",
        notification="inform",
        username=user,
        auth_protocol="SHA",
        priv_protocol="AES",
    )


async def test_v3_inform_is_acknowledged(receiver, sender, make_command, make_channel):
    channel = v3_inform_channel(make_channel, receiver.port, "sb-inform", AUTH_KEY)

    outcome = await sender.send(make_command(), channel)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    (trap,) = receiver.wait_for(1)
    assert trap.security.startswith("INFORM, SNMP v3, user sb-inform")


@pytest.mark.parametrize(
    ("user", "auth_key", "indication"),
    [
        ("sb-inform", "wrong-auth-key-31337", "WrongDigest"),
        ("nobody-here", AUTH_KEY, "UnknownUserName"),
    ],
)
async def test_v3_inform_refused_credentials_are_permanent(
    receiver, sender, make_command, make_channel, user, auth_key, indication
):
    channel = v3_inform_channel(make_channel, receiver.port, user, auth_key)

    outcome = await sender.send(make_command(), channel)

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )
    assert indication in outcome.error
    assert auth_key not in outcome.error and PRIV_KEY not in outcome.error


async def test_v2c_inform_is_acknowledged(receiver, sender, make_command, make_channel):
    channel = make_channel(receiver.port, notification="inform")

    outcome = await sender.send(make_command(), channel)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    (trap,) = receiver.wait_for(1)
    assert trap.security.startswith("INFORM")


async def test_lost_inform_is_retryable(sender, make_command, make_channel, caplog):
    caplog.set_level(logging.DEBUG)
    channel = make_channel(free_udp_port(), notification="inform", timeout_s=2)

    outcome = await sender.send(make_command(), channel)

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.RETRYABLE,
        Reason.NOT_ACKNOWLEDGED,
    )
    assert COMMUNITY not in outcome.error
    assert COMMUNITY not in caplog.text


async def test_extra_varbinds_carry_their_declared_types(
    receiver, sender, make_command, make_channel
):
    extras = [
        {"oid": f"{ENTERPRISE}.3.1.0", "type": "IpAddress", "value": "{{ labels.ip }}"},
        {"oid": f"{ENTERPRISE}.3.2.0", "type": "Integer32", "value": "-42"},
        {
            "oid": f"{ENTERPRISE}.3.3.0",
            "type": "Counter64",
            "value": "18446744073709551615",
        },
        {
            "oid": f"{ENTERPRISE}.3.4.0",
            "type": "OctetString",
            "value": "{{ device_id }}",
        },
        {"oid": "1.3.6.1.2.1.2.2.1.1.7", "type": "Integer32", "value": "7"},
    ]

    await sender.send(
        make_command(), make_channel(receiver.port, extra_varbinds=extras)
    )

    (trap,) = receiver.wait_for(1)
    tail = trap.varbinds[-5:]
    assert [v.oid for v in tail] == [e["oid"] for e in extras]
    assert [(v.type, v.value) for v in tail] == [
        ("IpAddress", "192.0.2.17"),
        ("INTEGER", "-42"),
        ("Counter64", "18446744073709551615"),
        ("STRING", '"router-7"'),
        ("INTEGER", "7"),
    ]


async def test_wrong_type_reaching_the_sender_kills_only_that_job(
    receiver, sender, make_command, make_channel
):
    good = make_channel(receiver.port)
    # Skips validation, as a record written before the check existed would.
    config = Config.model_construct(
        **{
            **good.config.__dict__,
            "extra_varbinds": [
                Config.model_fields["extra_varbinds"]
                .annotation.__args__[0]
                .model_construct(
                    oid=f"{ENTERPRISE}.3.1.0", type="Integer32", value="not a number"
                )
            ],
        }
    )
    bad = type(good)(**{**good.__dict__, "config": config})

    refused = await sender.send(make_command(), bad)
    carried_on = await sender.send(make_command(summary="next job"), good)

    assert (refused.kind, refused.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )
    assert "not a valid Integer32" in refused.error
    assert carried_on.kind is OutcomeKind.DELIVERED
    (trap,) = receiver.wait_for(1)
    assert trap.get(alert_oid(10)).text == "next job"


async def test_templated_value_failing_its_type_at_send_is_permanent(
    receiver, sender, make_command, make_channel
):
    extras = [
        {"oid": f"{ENTERPRISE}.3.1.0", "type": "IpAddress", "value": "{{ site_id }}"}
    ]
    channel = make_channel(receiver.port, extra_varbinds=extras)

    outcome = await sender.send(make_command(), channel)

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )


@pytest.mark.parametrize(
    ("config", "secrets"),
    [
        ({}, {}),
        ({"version": "v3", "username": "u", "auth_protocol": "SHA"}, {}),
        (
            {
                "version": "v3",
                "username": "u",
                "auth_protocol": "SHA",
                "priv_protocol": "AES",
            },
            {"auth_key": AUTH_KEY},
        ),
    ],
)
async def test_missing_secret_is_permanent(
    sender, make_command, make_channel, config, secrets
):
    outcome = await sender.send(
        make_command(), make_channel(162, secrets=secrets, **config)
    )

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )


async def test_unresolvable_host_is_retryable(sender, make_command, make_channel):
    channel = make_channel(162, host="no-such-host.invalid")

    outcome = await sender.send(make_command(), channel)

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.RETRYABLE,
        Reason.CONNECTION_ERROR,
    )


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_ipv6_receiver(tmp_path, sender, make_command, make_channel):
    # pysnmp's default UDP target is IPv4 only; an IPv6 NMS must still work.
    receiver = TrapReceiver(tmp_path / "v6", communities=(COMMUNITY,), ipv6=True)
    receiver.start()
    try:
        command = make_command()
        outcome = await sender.send(command, make_channel(receiver.port, host="::1"))
        (trap,) = receiver.wait_for(1)
    finally:
        receiver.stop()

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    assert trap.get(alert_oid(1)).text == command["job_id"]


@pytest.mark.parametrize("host", private_hosts())
async def test_a_private_host_is_refused_at_send_unless_allowed(
    receiver, sender, make_command, make_channel, host
):
    strict = Sender(Settings(allow_private_targets=False))
    refused, allowed = make_command(), make_command()
    try:
        outcome = await strict.send(refused, make_channel(receiver.port, host=host))
    finally:
        await strict.close()
    await sender.send(allowed, make_channel(receiver.port))

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )
    assert "private targets are not allowed" in outcome.error
    traps = receiver.wait_for(1)
    assert [trap.get(alert_oid(1)).text for trap in traps] == [allowed["job_id"]]
