"""The Slack sender against a local Slack incoming webhook."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from services.deliverer.channels.slack.config import Config
from services.deliverer.channels.slack.message import MAX_TEXT_BLOCK_CHARS, escape
from services.deliverer.channels.slack.sender import Sender
from services.deliverer.outcome import Reason
from services.deliverer.text import TRUNCATION_MARKER
from services.receivers.slack import displayed, utf16_units
from switchboard.settings import Settings
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

# Slack's 400 answers name the payload problem (``invalid_payload`` by default).
REASON_OVERRIDES = {400: Reason.PAYLOAD_REJECTED}


def _sections(message: dict) -> list[str]:
    return [
        b["text"]["text"]
        for b in message["blocks"]
        if "text" in b and b["type"] == "section"
    ]


def _fields(message: dict) -> dict[str, str]:
    fields = next(b["fields"] for b in message["blocks"] if "fields" in b)
    return dict(displayed(f["text"]).split("\n", 1) for f in fields)


async def test_delivers_block_kit_message_with_all_facts(sender, job, slack):
    command, channel = job(summary="Link down on router-7", site_id="site-9")

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, DELIVERED, 200)
    [message] = slack.accepted
    assert message["text"] == "CRITICAL alert opened: Link down on router-7"
    assert message["blocks"][0]["type"] == "header"
    assert _sections(message)[:2] == ["Link down on router-7", "ge-0/0/1 lost carrier"]
    assert _fields(message) == {
        "*Severity*": "CRITICAL",
        "*Event*": "OPEN",
        "*Alert type*": "link_down",
        "*Site*": "site-9",
        "*Device*": "router-7",
        "*Time*": "2026-12-03 19:00:00 UTC",
    }


async def test_escapes_ampersand_and_angle_brackets_exactly_once(sender, job, slack):
    summary = "disk <90%> & load > 5 (already escaped: &amp; &lt;)"
    command, channel = job(summary=summary, details=None)

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    [message] = slack.accepted
    [headline] = _sections(message)
    assert headline == (
        "disk &lt;90%&gt; &amp; load &gt; 5 (already escaped: &amp;amp; &amp;lt;)"
    )
    assert displayed(headline) == summary
    assert displayed(message["text"]).endswith(summary)


@pytest.mark.parametrize("extra", [0, 1, 500])
async def test_details_fit_the_text_block_limit(sender, job, slack, extra):
    details = "d" * (MAX_TEXT_BLOCK_CHARS + extra)
    command, channel = job(details=details)

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    shown = _sections(slack.accepted[0])[1]
    assert utf16_units(shown) <= MAX_TEXT_BLOCK_CHARS
    if extra == 0:
        assert shown == details
    else:
        assert shown.endswith(TRUNCATION_MARKER)
        assert utf16_units(shown) == MAX_TEXT_BLOCK_CHARS


@pytest.mark.parametrize("joiner", [EMOJI, ROCKET_FAMILY])
@pytest.mark.parametrize("offset", [-3, -2, -1, 0, 1])
async def test_emoji_on_the_cut_stays_whole(sender, job, slack, joiner, offset):
    # Place the emoji so the cut falls just before, inside or after it.
    room = MAX_TEXT_BLOCK_CHARS - len(TRUNCATION_MARKER)
    details = "x" * (room + offset) + joiner + "y" * 50
    command, channel = job(details=details)

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    shown = _sections(slack.accepted[0])[1]
    kept = shown.removesuffix(TRUNCATION_MARKER)
    assert shown.endswith(TRUNCATION_MARKER) and details.startswith(kept)
    assert utf16_units(shown) <= MAX_TEXT_BLOCK_CHARS
    assert joiner in kept or not kept.endswith(("\u200d", joiner[0]))
    kept.encode("utf-8")  # no lone surrogate or broken sequence


async def test_an_escape_sequence_is_never_cut(sender, job, slack):
    details = "&" * MAX_TEXT_BLOCK_CHARS
    command, channel = job(details=details)

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    shown = _sections(slack.accepted[0])[1]
    assert utf16_units(shown) <= MAX_TEXT_BLOCK_CHARS
    kept = shown.removesuffix(TRUNCATION_MARKER)
    assert kept == escape("&" * (len(kept) // 5))


async def test_non_ascii_and_emoji_text_arrive_intact(sender, job, slack):
    summary = f"Störung in Zürich — 東京 {EMOJI} {ROCKET_FAMILY}"
    command, channel = job(summary=summary, device_id="routeur-été")

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    message = slack.accepted[0]
    assert displayed(_sections(message)[0]) == summary
    assert _fields(message)["*Device*"] == "routeur-été"


async def test_template_renders_the_headline_in_the_sandbox(sender, job, slack):
    template = (
        "{{ channel_name }}: {{ severity }} on {{ device_id }}: {{ summary }} <x>"
    )
    command, channel = job(template=template)

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    headline = _sections(slack.accepted[0])[0]
    assert displayed(headline) == "ops: CRITICAL on router-7: Link down on router-7 <x>"


@pytest.mark.parametrize("template", BROKEN_TEMPLATES)
def test_config_refuses_a_broken_template(template):
    with pytest.raises(ValidationError, match="template error"):
        Config(template=template)


@pytest.mark.parametrize("template", RUNTIME_FAILING_TEMPLATES)
async def test_template_failing_for_this_alert_is_a_permanent_template_error(
    sender, job, slack, template
):
    command, channel = job(template=template, labels={}, site_id=None, device_id=None)

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, None)
    assert outcome.reason is Reason.TEMPLATE_ERROR and outcome.error
    assert slack.exchanges == []


@pytest.mark.parametrize(("status", "kind", "reason"), HTTP_STATUS_DECISIONS)
async def test_retry_decision_for_each_status(sender, job, slack, status, kind, reason):
    slack.fail_next(status, body=success_body(status, "ok"))
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, kind, status)
    assert outcome.reason is REASON_OVERRIDES.get(status, reason)


async def test_429_is_retryable_not_before_retry_after(sender, job, slack):
    slack.fail_next(429, headers={"Retry-After": "30"})
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, RETRYABLE, 429)
    assert (outcome.reason, outcome.retry_after_s) == (Reason.HTTP_429, 30.0)


async def test_400_naming_a_payload_problem_is_permanent_with_slacks_text(
    sender, job, slack
):
    slack.fail_next(400, body="invalid_blocks")
    command, channel = job()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, 400)
    assert outcome.reason is Reason.PAYLOAD_REJECTED
    assert outcome.error == "HTTP 400: invalid_blocks"


async def test_wrong_token_is_permanent_and_does_not_echo_the_url(
    sender, job, slack, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong_url = slack.webhook_url[:-4] + "XXXX"
    command, channel = job(url=wrong_url)

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, PERMANENT, 403)
    assert outcome.error == "HTTP 403: invalid_token"
    assert_secret_absent(wrong_url, [outcome], caplog)


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
    sender, job, slack, caplog, misbehaviour, reason
):
    caplog.set_level(logging.DEBUG)
    command, channel = job()
    url = slack.webhook_url
    if misbehaviour == "delay":
        slack.delay_next(1.5)
        channel = _with_timeout(channel, 0.2)
    elif misbehaviour == "refuse":
        url = url.replace(slack.base_url, f"http://127.0.0.1:{closed_port()}")
        command, channel = job(url=url)
    else:
        getattr(slack, f"{misbehaviour}_next")()

    outcome = await sender.send(command, channel)

    assert_outcome(outcome, RETRYABLE, None)
    assert outcome.reason is reason and outcome.error
    assert_secret_absent(url, [outcome], caplog)


def _with_timeout(channel, timeout_s):
    from dataclasses import replace

    return replace(
        channel, config=channel.config.model_copy(update={"timeout_s": timeout_s})
    )


async def test_loopback_target_is_refused_unless_allowed(job, slack, caplog):
    caplog.set_level(logging.DEBUG)
    strict = Sender(Settings(allow_private_targets=False))
    command, channel = job()
    try:
        outcome = await strict.send(command, channel)
    finally:
        await strict.close()

    assert_outcome(outcome, PERMANENT, None)
    assert outcome.reason is Reason.INVALID_CONFIG
    assert slack.exchanges == []
    assert_secret_absent(slack.webhook_url, [outcome], caplog)


async def test_webhook_url_never_reaches_logs_or_outcomes(sender, job, slack, caplog):
    caplog.set_level(logging.DEBUG)
    outcomes = []
    for status in (200, 400, 404, 429, 500):
        slack.fail_next(status, body="ok" if status == 200 else None)
        command, channel = job()
        outcomes.append(await sender.send(command, channel))

    assert [o.status_code for o in outcomes] == [200, 400, 404, 429, 500]
    assert_secret_absent(slack.webhook_url, outcomes, caplog)


async def test_blank_summary_still_makes_a_valid_message(sender, job, slack):
    command, channel = job(summary="  ", details="", site_id="", device_id="")

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    assert _sections(slack.accepted[0])[0] == "CRITICAL alert opened"


async def test_alert_text_cannot_mention_or_link(sender, job, slack):
    summary = "<!channel> <@U024BE7LH> <https://evil.example|click here>"
    command, channel = job(summary=summary, details=summary)

    assert_outcome(await sender.send(command, channel), DELIVERED, 200)

    message = slack.accepted[0]
    texts = [message["text"], *_sections(message)]
    assert not any("<" in text or ">" in text for text in texts)
    assert [displayed(text) for text in _sections(message)[:2]] == [summary, summary]
