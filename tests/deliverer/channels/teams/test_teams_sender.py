"""The Teams sender against a local Workflows webhook."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from pydantic import ValidationError

from services.deliverer.alert_view import alert_view
from services.deliverer.channels.teams.card import (
    ADAPTIVE_CARD_CONTENT_TYPE,
    MAX_MESSAGE_BYTES,
    build_message,
)
from services.deliverer.channels.teams.config import Config
from services.deliverer.http_post import json_bytes
from services.deliverer.outcome import Reason
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

# Workflows answers 400 and 413 when it refuses the body itself.
REASON_OVERRIDES = {400: Reason.PAYLOAD_REJECTED, 413: Reason.PAYLOAD_REJECTED}


def _texts(card: dict) -> list[str]:
    return [
        element["text"] for element in card["body"] if element["type"] == "TextBlock"
    ]


def _facts(card: dict) -> dict[str, str]:
    [fact_set] = [element for element in card["body"] if element["type"] == "FactSet"]
    return {fact["title"]: fact["value"] for fact in fact_set["facts"]}


def _body_size(teams) -> int:
    return len(teams.exchanges[-1].request.body)


async def test_delivers_one_adaptive_card_in_a_message_envelope(sender, job, teams):
    command, channel = job(summary="Link down on router-7", site_id="site-9")

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, DELIVERED, 202)
    [message] = teams.accepted
    [attachment] = message["attachments"]
    assert message["type"] == "message"
    assert attachment["contentType"] == ADAPTIVE_CARD_CONTENT_TYPE
    assert "contentUrl" in attachment and attachment["contentUrl"] is None
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert _texts(card)[:3] == [
        "CRITICAL alert opened",
        "Link down on router-7",
        "ge-0/0/1 lost carrier",
    ]
    assert _facts(card) == {
        "Severity": "CRITICAL",
        "Event": "OPEN",
        "Alert type": "link_down",
        "Site": "site-9",
        "Device": "router-7",
        "Time": "2026-12-03 19:00:00 UTC",
    }


@pytest.mark.parametrize("kind", ["ACKNOWLEDGED", "CLOSED"])
async def test_every_event_kind_produces_a_valid_card(sender, job, teams, kind):
    command, channel = job(kind=kind, site_id=None, device_id=None, details=None)

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    card = teams.cards[0]
    assert _texts(card)[0] == f"CRITICAL alert {kind.lower()}"
    assert (_facts(card)["Site"], _facts(card)["Device"]) == ("-", "-")


def _details_filling(command, filler: str, extra: int) -> str:
    """Details of ``filler`` chars that make the body exactly the limit + ``extra``."""
    alert = command["alert"]

    def size(details: str) -> int:
        view = replace(alert_view(command), details=details)
        message = build_message(view, alert["severity"], alert["kind"])
        return len(json_bytes(message))

    per_char = size(filler * 2) - size(filler)
    base = size(filler) - per_char
    count, rest = divmod(MAX_MESSAGE_BYTES - base, per_char)
    assert rest == 0 or extra > 0, "filler does not divide the room"
    return filler * (count + (1 if extra else 0) + extra // per_char)


@pytest.mark.parametrize("extra", [0, 1, 10_000])
async def test_body_stays_within_teams_size_by_cutting_details(
    sender, job, teams, extra
):
    command, channel = job()
    details = _details_filling(command, "d", extra)
    command["alert"]["details"] = details

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    shown = _texts(teams.cards[0])[2]
    assert _body_size(teams) <= MAX_MESSAGE_BYTES
    if extra == 0:
        assert shown == details and _body_size(teams) == MAX_MESSAGE_BYTES
    else:
        assert shown.endswith(TRUNCATION_MARKER)
        assert details.startswith(shown.removesuffix(TRUNCATION_MARKER))


@pytest.mark.parametrize("filler", [EMOJI, ROCKET_FAMILY, "é", '"', "\n"])
async def test_multibyte_and_escaped_details_are_cut_whole(sender, job, teams, filler):
    command, channel = job(details=filler * 20_000)

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    shown = _texts(teams.cards[0])[2]
    kept = shown.removesuffix(TRUNCATION_MARKER)
    assert shown.endswith(TRUNCATION_MARKER) and kept
    assert kept == filler * (len(kept) // len(filler))
    assert MAX_MESSAGE_BYTES - 100 < _body_size(teams) <= MAX_MESSAGE_BYTES


async def test_non_ascii_and_emoji_text_arrive_intact(sender, job, teams):
    summary = f"Störung in Zürich — 東京 {EMOJI} {ROCKET_FAMILY} <b>&amp;"
    command, channel = job(summary=summary, device_id="routeur-été")

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    card = teams.cards[0]
    assert _texts(card)[1] == summary
    assert _facts(card)["Device"] == "routeur-été"


async def test_template_renders_the_headline(sender, job, teams):
    command, channel = job(
        template="{{ severity|lower }} · {{ device_id }}: {{ summary }}"
    )

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    assert _texts(teams.cards[0])[1] == "critical · router-7: Link down on router-7"


@pytest.mark.parametrize("template", BROKEN_TEMPLATES)
def test_config_refuses_a_broken_template(template):
    with pytest.raises(ValidationError, match="template error"):
        Config(template=template)


@pytest.mark.parametrize("template", RUNTIME_FAILING_TEMPLATES)
async def test_template_failing_for_this_alert_is_a_permanent_template_error(
    sender, job, teams, template
):
    command, channel = job(template=template, labels={}, site_id=None, device_id=None)

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, None)
    assert outcome.reason is Reason.TEMPLATE_ERROR and outcome.error
    assert teams.exchanges == []


@pytest.mark.parametrize(("status", "kind", "reason"), HTTP_STATUS_DECISIONS)
async def test_retry_decision_for_each_status(sender, job, teams, status, kind, reason):
    teams.fail_next(status, body=success_body(status, ""))
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, kind, status)
    assert outcome.reason is REASON_OVERRIDES.get(status, reason)


async def test_429_is_retryable_not_before_retry_after(sender, job, teams):
    teams.fail_next(429, headers={"Retry-After": "120"})
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, RETRYABLE, 429)
    assert (outcome.reason, outcome.retry_after_s) == (Reason.HTTP_429, 120.0)


async def test_refused_body_is_permanent_with_the_workflow_error(sender, job, teams):
    teams.fail_next(400)
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, 400)
    assert outcome.reason is Reason.PAYLOAD_REJECTED
    assert outcome.error.startswith("HTTP 400: TriggerInputSchemaMismatch: ")


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        (lambda url: url.replace("sig=", "sig=x"), 401),
        (lambda url: url.replace("/workflows/", "/workflows/0"), 404),
    ],
)
async def test_wrong_url_is_permanent_and_not_echoed(
    sender, job, teams, caplog, mangle, status
):
    caplog.set_level(logging.DEBUG)
    url = mangle(teams.webhook_url)
    command, channel = job(url=url)

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, status)
    assert_secret_absent(url, [outcome], caplog)


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        ("delay", Reason.TIMEOUT),
        ("refuse", Reason.CONNECTION_ERROR),
        ("disconnect", Reason.CONNECTION_ERROR),
        ("garbage", Reason.CONNECTION_ERROR),
    ],
)
async def test_transport_failures_are_retryable_without_the_url(
    sender, job, teams, caplog, misbehaviour, reason
):
    caplog.set_level(logging.DEBUG)
    url = teams.webhook_url
    if misbehaviour == "refuse":
        url = url.replace(teams.base_url, f"http://127.0.0.1:{closed_port()}")
    command, channel = job(url=url)
    if misbehaviour == "delay":
        teams.delay_next(1.5)
        channel = replace(
            channel, config=channel.config.model_copy(update={"timeout_s": 0.2})
        )
    elif misbehaviour != "refuse":
        getattr(teams, f"{misbehaviour}_next")()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, RETRYABLE, None)
    assert outcome.reason is reason and outcome.error
    assert_secret_absent(url, [outcome], caplog)


async def test_webhook_url_never_reaches_logs_or_outcomes(sender, job, teams, caplog):
    caplog.set_level(logging.DEBUG)
    outcomes = []
    for status in (202, 400, 404, 429, 503):
        teams.fail_next(status, body="" if status == 202 else None)
        command, channel = job()
        outcomes.append(await sender.send(command, channel))

    assert [o.status_code for o in outcomes] == [202, 400, 404, 429, 503]
    assert_secret_absent(teams.webhook_url, outcomes, caplog)


async def test_blank_summary_still_makes_a_valid_card(sender, job, teams):
    command, channel = job(summary="  ", details="", site_id="", device_id="")

    assert_outcome(await sender.send(command, channel), DELIVERED, 202)

    assert _texts(teams.cards[0])[1] == "CRITICAL alert opened"
