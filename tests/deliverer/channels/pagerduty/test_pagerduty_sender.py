"""The PagerDuty sender against a local Events API v2 endpoint."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from pydantic import ValidationError

from services.deliverer.channels.pagerduty.config import Config
from services.deliverer.channels.pagerduty.event import (
    MAX_EVENT_BYTES,
    MAX_SUMMARY_CHARS,
    dedup_key,
)
from services.deliverer.outcome import Reason
from services.deliverer.redact import REDACTED
from services.deliverer.text import TRUNCATION_MARKER
from tests.deliverer.channels.vendor_channels import (
    BROKEN_TEMPLATES,
    DELIVERED,
    EMOJI,
    PERMANENT,
    RETRYABLE,
    ROCKET_FAMILY,
    RUNTIME_FAILING_TEMPLATES,
    assert_outcome,
    assert_secret_absent,
    closed_port,
    success_body,
)
from tests.deliverer.status_table import HTTP_STATUS_DECISIONS

SUCCESS = '{"status": "success", "message": "Event processed"}'

# PagerDuty answers 400 only for an event it refuses.
REASON_OVERRIDES = {400: Reason.PAYLOAD_REJECTED}


def _body_size(pagerduty) -> int:
    return len(pagerduty.exchanges[-1].request.body)


async def test_open_triggers_an_incident_with_the_alerts_facts(sender, job, pagerduty):
    command, channel = job(summary="Link down on router-7", labels={"rack": "r12"})
    alert = command["alert"]

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, DELIVERED, 202)
    [event] = pagerduty.accepted
    key = f"{alert['tenant_id']}/{alert['alert_id']}"
    assert (event["event_action"], event["dedup_key"]) == ("trigger", key)
    payload = event["payload"]
    assert payload["summary"] == "Link down on router-7"
    assert (payload["severity"], payload["source"]) == ("critical", "router-7")
    assert (payload["class"], payload["group"]) == ("link_down", "site-1")
    assert payload["timestamp"] == "2026-12-03T19:00:00+00:00"
    assert payload["custom_details"]["details"] == "ge-0/0/1 lost carrier"
    assert payload["custom_details"]["labels"] == {"rack": "r12"}
    assert pagerduty.incidents == {key: "triggered"}


async def test_acknowledge_and_resolve_reach_the_incident_trigger_opened(
    sender, job, pagerduty
):
    command, channel = job()
    alert = command["alert"]
    actions = []
    for kind in ("OPEN", "ACKNOWLEDGED", "CLOSED"):
        command, _ = job(
            kind=kind, tenant_id=alert["tenant_id"], alert_id=alert["alert_id"]
        )
        assert_outcome(await sender.send(command, channel), DELIVERED, 202)
        actions.append(pagerduty.incidents.copy())

    key = dedup_key(alert["tenant_id"], alert["alert_id"])
    assert [event["dedup_key"] for event in pagerduty.accepted] == [key] * 3
    assert [event["event_action"] for event in pagerduty.accepted] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert [state[key] for state in actions] == [
        "triggered",
        "acknowledged",
        "resolved",
    ]


def test_dedup_key_is_stable_per_tenant_and_alert():
    assert dedup_key("t1", "a1") == dedup_key("t1", "a1") != dedup_key("t2", "a1")
    long_key = dedup_key("t" * 200, "a" * 200)
    assert long_key == dedup_key("t" * 200, "a" * 200)
    assert len(long_key) <= 255 and long_key != dedup_key("t" * 200, "a" * 199)


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("CRITICAL", "critical"),
        ("HIGH", "error"),
        ("MEDIUM", "warning"),
        ("LOW", "warning"),
        ("INFO", "info"),
    ],
)
async def test_severity_maps_to_pagerdutys_four_levels(
    sender, job, pagerduty, severity, expected
):
    command, channel = job(severity=severity)

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    assert pagerduty.accepted[0]["payload"]["severity"] == expected


@pytest.mark.parametrize("extra", [0, 1, 5000])
async def test_summary_is_at_most_1024_characters(sender, job, pagerduty, extra):
    summary = "s" * (MAX_SUMMARY_CHARS + extra)
    command, channel = job(summary=summary)

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    shown = pagerduty.accepted[0]["payload"]["summary"]
    assert len(shown) <= MAX_SUMMARY_CHARS
    if extra == 0:
        assert shown == summary
    else:
        assert shown.endswith(TRUNCATION_MARKER) and len(shown) == MAX_SUMMARY_CHARS


@pytest.mark.parametrize("joiner", [EMOJI, ROCKET_FAMILY])
async def test_emoji_on_the_summary_cut_stays_whole(sender, job, pagerduty, joiner):
    room = MAX_SUMMARY_CHARS - len(TRUNCATION_MARKER)
    summary = "x" * (room - 1) + joiner + "y" * 50
    command, channel = job(summary=summary)

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    kept = pagerduty.accepted[0]["payload"]["summary"].removesuffix(TRUNCATION_MARKER)
    assert kept in ("x" * (room - 1), "x" * (room - 1) + joiner)


def _event_size_with(job, sender_details: str) -> int:
    from services.deliverer.channels.pagerduty.event import build_event, event_size

    command, channel = job(details=sender_details, labels={})
    event = build_event(
        command["alert"],
        channel.secrets.routing_key,
        "Link down on router-7",
        channel.config,
    )
    return event_size(event)


@pytest.mark.parametrize("extra", [0, 1, 100_000])
async def test_body_is_at_most_512_kb_by_cutting_details_first(
    sender, job, pagerduty, extra
):
    base = _event_size_with(job, "d") - 1
    details = "d" * (MAX_EVENT_BYTES - base + extra)
    command, channel = job(details=details, labels={})

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    payload = pagerduty.accepted[0]["payload"]
    assert _body_size(pagerduty) <= MAX_EVENT_BYTES
    assert payload["summary"] == "Link down on router-7"
    assert (payload["severity"], payload["source"]) == ("critical", "router-7")
    shown = payload["custom_details"]["details"]
    if extra == 0:
        assert shown == details and _body_size(pagerduty) == MAX_EVENT_BYTES
    else:
        assert shown.endswith(TRUNCATION_MARKER)


async def test_huge_labels_are_left_out_after_details(sender, job, pagerduty):
    labels = {f"label-{n:05}": "v" * 100 for n in range(6000)}
    command, channel = job(details="é" * 1000, labels=labels)

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    event = pagerduty.accepted[0]
    custom = event["payload"]["custom_details"]
    assert _body_size(pagerduty) <= MAX_EVENT_BYTES
    assert "labels" not in custom and custom["labels_omitted"].startswith("6000 labels")
    assert event["dedup_key"] == dedup_key(
        command["tenant_id"], command["alert"]["alert_id"]
    )


@pytest.mark.parametrize("field", ["alert_type", "site_id", "alert_id"])
async def test_a_huge_field_outside_the_details_still_fits_512_kb(
    sender, job, pagerduty, field
):
    # The alert's type and site stand in for class and group, and the alert id
    # is kept when custom details are left out: each must be bounded itself.
    command, channel = job(**{field: "x" * (MAX_EVENT_BYTES + 100_000)})

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    payload = pagerduty.accepted[0]["payload"]
    assert _body_size(pagerduty) <= MAX_EVENT_BYTES
    assert len(payload["class"]) <= 255 and len(payload["group"]) <= 255
    assert len(payload["custom_details"].get("alert_id", "")) <= 255


async def test_non_ascii_and_emoji_text_arrive_intact(sender, job, pagerduty):
    summary = f"Störung in Zürich — 東京 {EMOJI} {ROCKET_FAMILY}"
    command, channel = job(
        summary=summary, details="détails ✓", device_id="routeur-été"
    )

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    payload = pagerduty.accepted[0]["payload"]
    assert (payload["summary"], payload["source"]) == (summary, "routeur-été")
    assert payload["custom_details"]["details"] == "détails ✓"


async def test_template_renders_the_summary(sender, job, pagerduty):
    command, channel = job(
        template="[{{ site_id }}] {{ summary }} ({{ labels.region }})"
    )

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    summary = pagerduty.accepted[0]["payload"]["summary"]
    assert summary == "[site-1] Link down on router-7 (eu-west)"


@pytest.mark.parametrize("template", BROKEN_TEMPLATES)
def test_config_refuses_a_broken_template(template):
    with pytest.raises(ValidationError, match="template error"):
        Config(template=template)


@pytest.mark.parametrize("template", RUNTIME_FAILING_TEMPLATES)
async def test_template_failing_for_this_alert_is_a_permanent_template_error(
    sender, job, pagerduty, template
):
    command, channel = job(template=template, labels={}, site_id=None, device_id=None)

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, None)
    assert outcome.reason is Reason.TEMPLATE_ERROR and outcome.error
    assert pagerduty.exchanges == []


@pytest.mark.parametrize(("status", "kind", "reason"), HTTP_STATUS_DECISIONS)
async def test_retry_decision_for_each_status(
    sender, job, pagerduty, status, kind, reason
):
    pagerduty.fail_next(
        status,
        body=success_body(
            status, '{"status": "success", "message": "Event processed"}'
        ),
    )
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, kind, status)
    assert outcome.reason is REASON_OVERRIDES.get(status, reason)


async def test_429_is_retryable_not_before_retry_after(sender, job, pagerduty):
    pagerduty.fail_next(429, headers={"Retry-After": "60"})
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, RETRYABLE, 429)
    assert (outcome.reason, outcome.retry_after_s) == (Reason.HTTP_429, 60.0)


async def test_400_is_permanent_with_pagerdutys_message(sender, job, pagerduty, caplog):
    caplog.set_level(logging.DEBUG)
    unknown_key = "0" * 32
    command, channel = job(routing_key=unknown_key)

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, 400)
    assert outcome.reason is Reason.PAYLOAD_REJECTED
    assert outcome.error == (
        "HTTP 400: invalid event: Event object is invalid (Invalid routing key)"
    )
    assert_secret_absent(unknown_key, [outcome], caplog)


async def test_routing_key_echoed_by_the_target_is_redacted(sender, job, pagerduty):
    key = pagerduty.routing_key
    pagerduty.fail_next(
        400, body=f'{{"status": "bad", "message": "key {key} refused"}}'
    )
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, 400)
    assert outcome.error == f"HTTP 400: bad: key {REDACTED} refused"


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        ("delay", Reason.TIMEOUT),
        ("refuse", Reason.CONNECTION_ERROR),
        ("disconnect", Reason.CONNECTION_ERROR),
        ("garbage", Reason.CONNECTION_ERROR),
    ],
)
async def test_transport_failures_are_retryable(
    sender, job, pagerduty, caplog, misbehaviour, reason
):
    caplog.set_level(logging.DEBUG)
    command, channel = job()
    config = channel.config
    if misbehaviour == "delay":
        pagerduty.delay_next(1.5)
        config = config.model_copy(update={"timeout_s": 0.2})
    elif misbehaviour == "refuse":
        url = pagerduty.events_url.replace(
            pagerduty.base_url, f"http://127.0.0.1:{closed_port()}"
        )
        config = config.model_copy(update={"events_url": url})
    else:
        getattr(pagerduty, f"{misbehaviour}_next")()

    outcome = await sender.send(command, replace(channel, config=config))

    assert_outcome(outcome, RETRYABLE, None)
    assert outcome.reason is reason and outcome.error
    assert_secret_absent(pagerduty.routing_key, [outcome], caplog)


async def test_routing_key_never_reaches_logs_or_outcomes(
    sender, job, pagerduty, caplog
):
    caplog.set_level(logging.DEBUG)
    outcomes = []
    for status in (202, 400, 404, 429, 500):
        body = '{"status": "success", "message": "ok"}' if status == 202 else None
        pagerduty.fail_next(status, body=body)
        command, channel = job()
        outcomes.append(await sender.send(command, channel))

    assert [o.status_code for o in outcomes] == [202, 400, 404, 429, 500]
    assert_secret_absent(pagerduty.routing_key, outcomes, caplog)


async def test_blank_summary_and_source_still_make_a_valid_event(
    sender, job, pagerduty
):
    command, channel = job(summary=" ", source=" ", site_id=None, device_id=None)

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    payload = pagerduty.accepted[0]["payload"]
    assert (payload["summary"], payload["source"]) == (
        "CRITICAL link_down",
        "Switchboard",
    )
