"""Each old type's conversion, planned from in-memory old rows (no database needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from services.cutover.legacy import LegacyIntegration, LegacyRoute, LegacySnapshot
from services.cutover.plan import Plan, TargetState, build_plan
from services.deliverer import templates
from services.deliverer.channels.mqtt.message import render_topic
from services.deliverer.channels.webhook.sender import signature_headers

TENANT = str(uuid.uuid4())
HOST = "93.184.215.60"
EMPTY = TargetState(
    ledger={}, tenants=frozenset(), live_channels=frozenset(), applied=False
)


def integration(kind: str, config: Any, **fields: Any) -> LegacyIntegration:
    values = {
        "id": uuid.uuid4(),
        "tenant_id": TENANT,
        "name": f"old {kind}",
        "type": kind,
        "enabled": True,
        "config": config,
    }
    return LegacyIntegration(**{**values, **fields})


def route(target: LegacyIntegration, **fields: Any) -> LegacyRoute:
    values = {
        "id": uuid.uuid4(),
        "tenant_id": TENANT,
        "integration_id": target.id,
        "name": "old route",
        "enabled": True,
        "site_ids": None,
        "device_prefixes": None,
        "deliver_on": None,
        "alert_types": None,
        "min_severity": None,
        "priority": None,
    }
    return LegacyRoute(**{**values, **fields})


def plan_of(*rows: LegacyIntegration, routes: tuple[LegacyRoute, ...] = ()) -> Plan:
    snapshot = LegacySnapshot(
        present=("integrations",), integrations=rows, routes=routes
    )
    return build_plan(snapshot, EMPTY)


def converted(kind: str, config: dict[str, Any]) -> tuple[dict, dict]:
    plan = plan_of(integration(kind, config))
    assert not plan.unconvertible, plan.unconvertible[0].problems
    channel = plan.channels[0].channel
    assert channel is not None
    return channel.config, channel.secrets


def problems(kind: str, config: Any) -> dict[str, str]:
    plan = plan_of(integration(kind, config))
    assert not plan.channels
    return dict(plan.unconvertible[0].problems)


@pytest.mark.parametrize(
    ("old", "new"),
    [("2c", "v2c"), ("v2c", "v2c"), (2, "v2c"), ("3", "v3"), ("V3", "v3")],
)
def test_snmp_version_spellings(old: Any, new: str) -> None:
    config, _ = converted(
        "snmp", {"host": HOST, "version": old, "username": "u", "community": "public"}
    )
    assert config["version"] == new


def test_snmp_v1_and_missing_credentials_name_the_old_field() -> None:
    assert "config.version" in problems(
        "snmp", {"host": HOST, "version": "1", "community": "c"}
    )
    assert problems("snmp", {"host": HOST}) == {
        "secrets.community (old config.community)": "SNMP v2c needs community"
    }
    assert "secrets.priv_key (old config.priv_key)" in problems(
        "snmp",
        {
            "host": HOST,
            "version": "v3",
            "username": "u",
            "auth_protocol": "SHA-256",
            "auth_key": "k" * 8,
            "priv_protocol": "AES128",
        },
    )


@pytest.mark.parametrize(
    ("tls", "port", "security", "expected_port"),
    [
        (True, 465, "tls", 465),
        (True, 587, "starttls", 587),
        (False, None, "none", 25),
        ("ssl", None, "tls", 465),
        (None, None, "starttls", 587),
    ],
)
def test_email_tls_flag_and_port(
    tls: Any, port: Any, security: str, expected_port: int
) -> None:
    config, secrets = converted(
        "email",
        {
            "smtp_host": HOST,
            "smtp_port": port,
            "smtp_tls": tls,
            "from_address": "Alerts@Exämple.com",
            "recipients": "a@example.com; b@example.com",
            "username": "u",
            "password": "p4ss",
        },
    )
    assert (config["security"], config["port"]) == (security, expected_port)
    assert config["to"] == ["a@example.com", "b@example.com"]
    assert config["from_address"] == "Alerts@xn--exmple-cua.com"
    assert secrets == {"password": "p4ss"}


def test_email_missing_host_names_the_old_key() -> None:
    assert problems(
        "email", {"from_address": "a@example.com", "recipients": ["b@example.com"]}
    ) == {"config.host (old config.smtp_host)": "Field required"}


@pytest.mark.parametrize("topic", ["plain/topic", "odd/{{x}}/{%y%}/{{ z }}"])
def test_mqtt_topic_renders_to_exactly_the_old_topic(topic: str) -> None:
    config, _ = converted(
        "mqtt", {"broker_host": HOST, "topic": topic, "use_tls": True}
    )
    rendered = render_topic(config["topic_template"], templates.sample_context())
    assert rendered == topic
    assert (config["port"], config["tls"]) == (8883, True)


def test_mqtt_without_topic_or_with_a_wildcard_is_unconvertible() -> None:
    assert problems("mqtt", {"broker_host": HOST}) == {
        "config.topic_template (old config.topic)": "Field required"
    }
    assert "config.topic_template (old config.topic)" in problems(
        "mqtt", {"broker_host": HOST, "topic": "alerts/#"}
    )


def test_webhook_secret_keeps_its_bytes_or_says_why_not() -> None:
    _, secrets = converted("webhook", {"url": f"https://{HOST}/h", "secret": "s" * 24})
    assert secrets["signing_secret"] == "whsec_" + "c3Nz" * 8
    already = "whsec_" + "QUJD" * 8
    _, secrets = converted("webhook", {"url": f"https://{HOST}/h", "secret": already})
    assert secrets["signing_secret"] == already
    short = problems("webhook", {"url": f"https://{HOST}/h", "secret": "short-one"})
    assert list(short) == ["secrets.signing_secret (old config.secret)"]
    assert "short-one" not in next(iter(short.values()))


def test_unknown_old_keys_are_warned_about_not_lost_silently() -> None:
    plan = plan_of(integration("webhook", {"url": f"https://{HOST}/h", "retries": 5}))
    assert plan.channels[0].warnings == ("old config keys not carried over: retries",)


def test_config_that_is_not_an_object() -> None:
    assert problems("webhook", ["not", "an", "object"]) == {
        "config": "config is not a JSON object"
    }


def test_non_uuid_tenant_is_unconvertible() -> None:
    plan = plan_of(
        integration("webhook", {"url": f"https://{HOST}/h"}, tenant_id="acme")
    )
    assert plan.unconvertible[0].problems == (
        ("tenant_id", "'acme' is not a uuid; Switchboard tenants are uuids"),
    )


def test_route_fields_null_arrays_any_case_and_no_stop_or_throttle() -> None:
    target = integration("webhook", {"url": f"https://{HOST}/h"})
    old = route(
        target,
        deliver_on=["open", "OPEN", "Closed"],
        min_severity="medium",
        site_ids=None,
        device_prefixes=[],
        alert_types=None,
        name=None,
    )
    plan = plan_of(target, routes=(old,))
    fields = plan.rules[0].fields
    assert fields["deliver_on"] == ["OPEN", "CLOSED"]
    assert fields["min_severity"] == "MEDIUM"
    assert (fields["site_ids"], fields["device_prefixes"], fields["alert_types"]) == (
        [],
        [],
        [],
    )
    assert (
        fields["stop_on_match"],
        fields["throttle_minutes"],
        fields["priority"],
    ) == (False, 0, 100)
    assert fields["name"] == "Route to old webhook"


def test_route_and_integration_of_different_tenants() -> None:
    target = integration("webhook", {"url": f"https://{HOST}/h"})
    plan = plan_of(target, routes=(route(target, tenant_id=str(uuid.uuid4())),))
    assert plan.unconvertible[0].problems[0][0] == "tenant_id"


def test_receivers_can_verify_with_the_old_secret_bytes() -> None:
    old_secret = "the-old-hmac-secret-of-some-length"
    _, secrets = converted(
        "webhook", {"url": f"https://{HOST}/h", "secret": old_secret}
    )
    moment = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    body = b'{"alert": "x"}'

    headers = signature_headers(
        Webhook(secrets["signing_secret"]), "job-1", moment, body
    )

    signed = f"job-1.{int(moment.timestamp())}.".encode() + body
    digest = hmac.new(old_secret.encode(), signed, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()


def test_an_invalid_address_names_the_old_list_entry() -> None:
    found = problems(
        "email",
        {
            "smtp_host": HOST,
            "from_address": "a@example.com",
            "recipients": ["noc@example.com", "not an address"],
        },
    )
    assert list(found) == ["config.to.1 (old config.recipients.1)"]


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ({"deliver_on": ["OPEN"]}, {"deliver_on": ["closed"]}, False),
        ({"deliver_on": ["OPEN"]}, {"site_ids": ["s1"]}, True),
        ({"device_prefixes": ["core-"]}, {"device_prefixes": ["core-1", "x"]}, True),
        ({"device_prefixes": ["core-"]}, {"device_prefixes": ["edge-"]}, False),
        ({"alert_types": ["a", "b"]}, {"alert_types": ["b"]}, True),
        ({"site_ids": ["s1"]}, {"site_ids": ["s1"], "enabled": False}, False),
    ],
)
def test_two_routes_of_one_integration_that_can_both_match_are_warned_about(
    first: dict, second: dict, overlap: bool
) -> None:
    target = integration("webhook", {"url": f"https://{HOST}/h"})
    plan = plan_of(target, routes=(route(target, **first), route(target, **second)))
    warned = [w for w in plan.warnings if "can both match one alert" in w]
    assert bool(warned) is overlap


def test_credential_headers_move_to_the_encrypted_secret_headers() -> None:
    headers = {
        "X-Team": "noc",
        "Authorization": "Bearer t0k3n-aa",
        "X-Api-Key": "k3y-bb",
        "Cookie": "session=c00kie",
    }
    plan = plan_of(
        integration("webhook", {"url": f"https://{HOST}/h", "headers": headers})
    )
    channel = plan.channels[0].channel
    assert channel is not None

    assert channel.config["headers"] == {"X-Team": "noc"}
    assert channel.secrets["secret_headers"] == {
        "Authorization": "Bearer t0k3n-aa",
        "X-Api-Key": "k3y-bb",
        "Cookie": "session=c00kie",
    }
    moved = [w for w in plan.channels[0].warnings if "moved to the encrypted" in w]
    assert [w.split()[1] for w in moved] == ["Authorization", "Cookie", "X-Api-Key"]
    assert not any("t0k3n" in w or "k3y-bb" in w for w in plan.channels[0].warnings)


def test_a_url_user_and_password_become_a_basic_authorization_header() -> None:
    config, secrets = converted(
        "webhook", {"url": f"https://ops:p%40ss@{HOST}:8443/h?x=1"}
    )

    assert config["url"] == f"https://{HOST}:8443/h?x=1"
    assert secrets["secret_headers"] == {
        "Authorization": "Basic " + base64.b64encode(b"ops:p@ss").decode()
    }
    both = problems(
        "webhook",
        {"url": f"https://ops:pw@{HOST}/h", "headers": {"Authorization": "Bearer x"}},
    )
    assert "keep one of them" in both["config.url"]
