"""Builders and tables shared by the Slack, Teams and PagerDuty channel tests."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.outcome import Outcome, OutcomeKind
from services.deliverer.targets import is_public
from switchboard.jobs import new_command
from switchboard.settings import PROJECT_ROOT, Settings

VENDOR_SCHEMAS = PROJECT_ROOT.parent / "shared/vendor"
PAGERDUTY_OPENAPI_URI = "urn:pagerduty:events-v2:openapi"
PAGERDUTY_BODY_POINTER = (
    "/paths/~1enqueue/post/requestBody/content/application~1json/schema"
)

# The channels' targets are loopback peers, which production refuses.
LOOPBACK_SETTINGS = Settings(allow_private_targets=True)

DELIVERED, RETRYABLE, PERMANENT = (
    OutcomeKind.DELIVERED,
    OutcomeKind.RETRYABLE,
    OutcomeKind.PERMANENT,
)


def success_body(status: int, body: str) -> str | None:
    """``body`` for a programmed 2xx answer (none for 204 and 304), else the
    receiver's own error body for ``status``."""
    if status in (204, 304):
        return ""
    return body if status < 300 else None


# Templates a channel's config refuses when it is saved.
BROKEN_TEMPLATES = [
    "{{ no_such_name }}",
    "{{ summary.__class__ }}",
    "{% if %}",
    "{{ 1 / 0 }}",
]
# Templates that render for the sample alert but fail for an alert without
# labels, site and device: only the attempt can find out.
RUNTIME_FAILING_TEMPLATES = [
    "{{ 1 // (labels|length) }}",
    "{{ site_id.upper() }}",
    "{{ device_id.upper() }}",
]

EMOJI = "🚨"  # four UTF-8 bytes, two UTF-16 code units
ROCKET_FAMILY = "👩\u200d🚀"  # a joined emoji: woman, zero-width joiner, rocket


def make_alert(**fields: Any) -> dict[str, Any]:
    """An AlertEvent as the codec decodes it, with ``fields`` overriding."""
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": f"tenant-{uuid.uuid4().hex[:8]}",
        "alert_id": f"alert-{uuid.uuid4().hex[:8]}",
        "kind": "OPEN",
        "severity": "CRITICAL",
        "alert_type": "link_down",
        "site_id": "site-1",
        "device_id": "router-7",
        "summary": "Link down on router-7",
        "details": "ge-0/0/1 lost carrier",
        "labels": {"region": "eu-west"},
        "occurred_at": datetime(2026, 12, 3, 19, 0, 0, tzinfo=UTC),
        "source": "netmon",
    }
    alert.update(fields)
    return alert


def make_command(channel_type: str, **fields: Any) -> dict[str, Any]:
    """A first-attempt DeliveryCommand for a new alert built by :func:`make_alert`."""
    alert = make_alert(**fields)
    return new_command(alert, f"channel-{uuid.uuid4().hex[:8]}", channel_type, "rule-1")


def resolved(command: dict[str, Any], config: Any, secrets: Any) -> ResolvedChannel:
    """The channel of ``command`` as the deliverer resolves it."""
    return ResolvedChannel(
        id=command["channel_id"],
        tenant_id=command["tenant_id"],
        name="ops",
        channel_type=command["channel_type"],
        enabled=True,
        config=config,
        secrets=secrets,
    )


def assert_outcome(outcome: Outcome, kind: OutcomeKind, status: int | None) -> None:
    """Check an outcome's kind and status, showing the whole outcome on failure."""
    assert (outcome.kind, outcome.status_code) == (kind, status), outcome


def assert_secret_absent(
    secret: str, outcomes: list[Outcome], caplog: pytest.LogCaptureFixture
) -> None:
    """``secret`` (and its token-bearing tail) is in no outcome and no log record."""
    needles = {secret, secret.rsplit("/", 1)[-1], secret.split("?", 1)[-1]}
    texts = [str(outcome) for outcome in outcomes]
    texts += [_record_text(record) for record in caplog.records]
    for needle in needles:
        leaks = [text for text in texts if needle in text]
        assert not leaks, f"secret leaked into: {leaks[:3]}"


def _record_text(record: logging.LogRecord) -> str:
    return f"{record.getMessage()} {record.__dict__}"


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@lru_cache(maxsize=1)
def card_validator() -> jsonschema.Draft6Validator:
    """Microsoft's published Adaptive Card 1.4 schema (draft-06), formats checked."""
    schema = json.loads((VENDOR_SCHEMAS / "adaptive-card-1.4.schema.json").read_text())
    return jsonschema.Draft6Validator(
        schema, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER
    )


@lru_cache(maxsize=1)
def pagerduty_event_validator() -> jsonschema.Draft7Validator:
    """PagerDuty's enqueue body schema, references resolved in the whole document."""
    document = json.loads((VENDOR_SCHEMAS / "pagerduty-events-v2.json").read_text())
    resource = Resource.from_contents(document, default_specification=DRAFT7)
    registry = Registry().with_resource(PAGERDUTY_OPENAPI_URI, resource)
    return jsonschema.Draft7Validator(
        {"$ref": f"{PAGERDUTY_OPENAPI_URI}#{PAGERDUTY_BODY_POINTER}"},
        registry=registry,
        format_checker=_date_time_checker(),
    )


def _date_time_checker() -> jsonschema.FormatChecker:
    # jsonschema checks "date-time" only with an optional package not installed
    # here, and the payload's timestamp is declared with that format.
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def is_date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return "T" in value.upper() and moment.tzinfo is not None

    return checker


def private_hosts() -> list[str]:
    """Hosts a deliverer refuses unless private targets are allowed.

    A loopback address, ``localhost`` (refused by name), and this machine's own
    name, which resolves to a loopback or private address: a name the API may
    have let through at save time (it did not resolve then) and that resolves
    to the operator's network when the deliverer sends.
    """
    hosts = ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"]
    own_name = socket.gethostname()
    try:
        own_addresses = {info[4][0] for info in socket.getaddrinfo(own_name, None)}
    except OSError:
        return hosts
    if own_addresses and not any(map(is_public, own_addresses)):
        hosts.append(own_name)
    return hosts
