"""The old integrations schema and a fixture of awkward rows, for cutover tests.

The four tables are created exactly as the old system had them, in a scratch
database that also holds Switchboard's schema, so tests can drop them freely.
The rows cover what a real installation holds: every old type, a disabled
integration, a route to a deleted integration, an unknown ``sms`` type, NULL
arrays, severities and kinds in any case, malformed configs, a private target,
non-ASCII names, secrets, finished and unfinished jobs, and a tenant that
Switchboard does not know yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

LEGACY_SCHEMA = """
CREATE TABLE integrations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    name        text,
    type        text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    config      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE integration_routes (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    integration_id   uuid,
    name             text,
    enabled          boolean NOT NULL DEFAULT true,
    site_ids         text[],
    device_prefixes  text[],
    deliver_on       text[],
    alert_types      text[],
    min_severity     text,
    priority         integer,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE delivery_jobs (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    integration_id  uuid,
    alert_id        text NOT NULL,
    event_kind      text NOT NULL,
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_run_at     timestamptz,
    last_error      text,
    payload         jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE delivery_attempts (
    id           bigserial PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES delivery_jobs (id) ON DELETE CASCADE,
    attempt_no   integer NOT NULL,
    ok           boolean NOT NULL,
    http_status  integer,
    error        text,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz
);
"""

# Public addresses as literals: the private-target check resolves names, and a
# test must not depend on DNS.
PUBLIC = "93.184.215.{}"

# Every secret the fixture holds; none may appear in any report or log.
SECRETS = (
    "old-hmac-secret-0123456789abcdef",
    "query-token-5f1e2d",
    "Bearer header-token-77aa",
    "c0mmunity-s3cret",
    "authkey-9f8e7d6c",
    "privkey-1a2b3c4d",
    "smtp-pass-w0rd",
    "mqtt-pass-w0rd",
    "lab-mqtt-s3cret",
)


@dataclass
class Legacy:
    """Ids of the fixture rows, by the role each plays."""

    url: str
    known_tenant: str = field(default_factory=lambda: str(uuid.uuid4()))
    new_tenant: str = field(default_factory=lambda: str(uuid.uuid4()))
    ids: dict[str, str] = field(default_factory=dict)
    integrations: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)

    def id(self, role: str) -> str:
        """The id of the row playing ``role``, made on first use."""
        return self.ids.setdefault(role, str(uuid.uuid4()))


def _integrations(legacy: Legacy) -> list[dict[str, Any]]:
    known, new = legacy.known_tenant, legacy.new_tenant
    webhook_config = {
        "url": f"https://{PUBLIC.format(10)}/hooks/ops?token=query-token-5f1e2d",
        "headers": {"X-Team": "noc", "Authorization": "Bearer header-token-77aa"},
        "secret": "old-hmac-secret-0123456789abcdef",
    }
    rows = [
        ("webhook", known, "Ops webhook — Zürich ✓", "webhook", True, webhook_config),
        (
            "snmp_v2c",
            known,
            "Core traps",
            "snmp",
            True,
            {
                "host": PUBLIC.format(20),
                "port": 162,
                "version": "2c",
                "community": "c0mmunity-s3cret",
            },
        ),
        (
            "snmp_v3",
            known,
            "Secure traps",
            "SNMP",
            True,
            {
                "host": PUBLIC.format(21),
                "version": "3",
                "username": "sbuser",
                "auth_protocol": "sha",
                "auth_key": "authkey-9f8e7d6c",
                "priv_protocol": "aes",
                "priv_key": "privkey-1a2b3c4d",
            },
        ),
        (
            "email",
            known,
            "NOC mail",
            "email",
            True,
            {
                "smtp_host": PUBLIC.format(30),
                "smtp_port": 587,
                "smtp_tls": True,
                "username": "alerts",
                "password": "smtp-pass-w0rd",
                "from_address": "alerts@example.com",
                "recipients": ["noc@example.com", "oncall@example.com"],
            },
        ),
        (
            "mqtt_disabled",
            known,
            "Factory MQTT",
            "mqtt",
            False,
            {
                "broker_host": PUBLIC.format(40),
                "broker_port": 8883,
                "topic": "plant/alerts",
                "qos": 1,
                "username": "mq",
                "password": "mqtt-pass-w0rd",
                "use_tls": True,
            },
        ),
        (
            "sms",
            known,
            "SMS gateway",
            "sms",
            True,
            {"number": "+4912345", "api_key": "sms-key"},
        ),
        ("bad_url", known, "Broken hook", "webhook", True, {"url": "not a url"}),
        (
            "no_from",
            known,
            "Mail without sender",
            "email",
            True,
            {
                "smtp_host": PUBLIC.format(31),
                "recipients": "a@example.com",
                "password": "smtp-pass-w0rd",
            },
        ),
        (
            "private",
            known,
            "Internal hook",
            "webhook",
            True,
            {"url": "http://10.1.2.3/alerts"},
        ),
        (
            "lab_mqtt",
            new,
            "Лаборатория MQTT",
            "mqtt",
            True,
            {
                "broker_host": PUBLIC.format(50),
                "topic": "lab/{{site}}/alerts",
                "qos": 2,
                "username": "lab",
                "password": "lab-mqtt-s3cret",
            },
        ),
        (
            "plain_hook",
            new,
            None,
            "webhook",
            True,
            {"url": f"https://{PUBLIC.format(11)}/plain", "headers": None},
        ),
    ]
    return [
        {
            "id": legacy.id(role),
            "tenant_id": tenant,
            "name": name,
            "type": kind,
            "enabled": enabled,
            "config": config,
            "role": role,
        }
        for role, tenant, name, kind, enabled, config in rows
    ]


def _route(legacy: Legacy, role: str, tenant: str, target: str, **fields: Any) -> dict:
    integration_id = legacy.id(target) if target != "deleted" else str(uuid.uuid4())
    route = {
        "id": legacy.id(role),
        "tenant_id": tenant,
        "integration_id": integration_id,
        "name": fields.pop("name", f"route {role}"),
        "enabled": True,
        "site_ids": None,
        "device_prefixes": None,
        "deliver_on": None,
        "alert_types": None,
        "min_severity": None,
        "priority": 100,
        "role": role,
    }
    route.update(fields)
    return route


def _routes(legacy: Legacy) -> list[dict[str, Any]]:
    known, new = legacy.known_tenant, legacy.new_tenant
    return [
        _route(
            legacy,
            "r_core",
            known,
            "webhook",
            device_prefixes=["core-"],
            deliver_on=["open", "Closed"],
            min_severity="high",
            priority=10,
        ),
        _route(legacy, "r_all", known, "snmp_v2c", priority=20),
        _route(
            legacy,
            "r_sites",
            known,
            "snmp_v3",
            site_ids=["site-a", "site-b"],
            alert_types=["link_down"],
            min_severity="Medium",
            priority=30,
        ),
        _route(
            legacy,
            "r_off",
            known,
            "email",
            deliver_on=["OPEN"],
            alert_types=["power"],
            min_severity="critical",
            priority=5,
            enabled=False,
        ),
        _route(
            legacy,
            "r_site_b",
            known,
            "email",
            site_ids=["site-b"],
            priority=40,
            name="Site B — ünïcode mail",
        ),
        _route(legacy, "r_disabled_target", known, "mqtt_disabled"),
        _route(legacy, "r_sms", known, "sms"),
        _route(legacy, "r_deleted", known, "deleted", alert_types=["power"]),
        _route(legacy, "r_bad_url", known, "bad_url"),
        _route(
            legacy,
            "r_unnamed",
            known,
            "webhook",
            name=None,
            priority=None,
            deliver_on=["acknowledged"],
        ),
        _route(legacy, "r_bad_severity", known, "webhook", min_severity="WARNING"),
        _route(
            legacy,
            "r_lab",
            new,
            "lab_mqtt",
            device_prefixes=["lab-", "lab2-"],
            min_severity="low",
            deliver_on=[],
        ),
        _route(legacy, "r_temp", new, "plain_hook", alert_types=["temp"]),
    ]


def _jobs(legacy: Legacy) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    known, new = legacy.known_tenant, legacy.new_tenant
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    second = timedelta(seconds=1)

    def job(
        role: str, tenant: str, target: str, status: str, attempts: int, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": legacy.id(role),
            "tenant_id": tenant,
            "integration_id": legacy.id(target),
            "alert_id": f"alert-{role}",
            "event_kind": "open",
            "status": status,
            "attempts": attempts,
            "last_error": extra.get("last_error"),
            "payload": extra.get("payload"),
            "created_at": start,
            "updated_at": start + 10 * second,
        }

    def attempt(
        role: str, number: int, ok: bool, status: int | None, error: str | None = None
    ) -> dict[str, Any]:
        began = start + number * second
        return {
            "job_id": legacy.id(role),
            "attempt_no": number,
            "ok": ok,
            "http_status": status,
            "error": error,
            "started_at": began,
            "finished_at": began + second / 4,
        }

    return [
        (
            job(
                "j_delivered",
                known,
                "webhook",
                "COMPLETED",
                2,
                payload={
                    "severity": "high",
                    "event_id": "ev-1",
                    "occurred_at": "2026-11-30T07:59:00+00:00",
                },
            ),
            [
                attempt("j_delivered", 1, False, 503, "HTTP 503"),
                attempt("j_delivered", 2, True, 200),
            ],
        ),
        (
            job("j_dead", known, "snmp_v2c", "failed", 3, last_error="timeout"),
            [attempt("j_dead", n, False, None, "timeout") for n in (1, 2, 3)],
        ),
        (job("j_pending", known, "email", "PENDING", 0), []),
        (job("j_processing", known, "webhook", "PROCESSING", 1), []),
        (job("j_sms", known, "sms", "COMPLETED", 1), []),
        (
            job("j_lab", new, "lab_mqtt", "COMPLETED", 1, payload={"severity": "LOW"}),
            [],
        ),
    ]


def create_legacy(url: str, switchboard_url: str | None = None) -> Legacy:
    """Create the old tables in ``url`` and fill them with the fixture rows.

    One of the two tenants is known to Switchboard (in ``switchboard_url``,
    by default the same database), the other is not.
    """
    legacy = Legacy(url)
    legacy.integrations = _integrations(legacy)
    legacy.routes = _routes(legacy)
    with psycopg.connect(switchboard_url or url) as conn:
        conn.execute(
            "INSERT INTO tenants (id, name) VALUES (%s, %s)",
            (legacy.known_tenant, f"known-{legacy.known_tenant}"),
        )
    with psycopg.connect(url) as conn:
        conn.execute(LEGACY_SCHEMA)
        for row in legacy.integrations:
            _insert(conn, "integrations", row, json_columns=("config",))
        for row in legacy.routes:
            _insert(conn, "integration_routes", row)
        for job, attempts in _jobs(legacy):
            _insert(conn, "delivery_jobs", job, json_columns=("payload",))
            for attempt in attempts:
                _insert(conn, "delivery_attempts", attempt)
    return legacy


def _insert(
    conn: psycopg.Connection,
    table: str,
    row: dict[str, Any],
    json_columns: tuple[str, ...] = (),
) -> None:
    values = {k: v for k, v in row.items() if k != "role"}
    for column in json_columns:
        if values.get(column) is not None:
            values[column] = Jsonb(values[column])
    columns = ", ".join(values)
    placeholders = ", ".join(["%s"] * len(values))
    conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",
        tuple(values.values()),
    )
