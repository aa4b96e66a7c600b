"""The local Slack, Teams and PagerDuty receivers refuse what their vendor refuses.

Each row sends one request straight to a receiver (no sender involved) and
checks the status and the vendor-shaped error body it answers with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.receivers.pagerduty import PagerDutyReceiver
from services.receivers.slack import SlackReceiver
from services.receivers.teams import ADAPTIVE_CARD_CONTENT_TYPE, TeamsReceiver

EMOJI = "🚨"


def _post(url: str, document: Any = None, **kwargs: Any) -> httpx.Response:
    if document is not None:
        kwargs["content"] = json.dumps(document, ensure_ascii=False).encode()
        kwargs.setdefault("headers", {"content-type": "application/json"})
    return httpx.post(url, timeout=5, **kwargs)


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackReceiver]:
    """One Slack receiver for the module."""
    with SlackReceiver() as receiver:
        yield receiver


def _section(text: str) -> dict[str, Any]:
    return {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


SLACK_CASES = [
    ("plain text", {"text": "hi"}, 200, "ok"),
    ("section at 3000", _section("x" * 3000), 200, "ok"),
    ("section over 3000", _section("x" * 3001), 400, "invalid_blocks"),
    ("emoji at 3000 units", _section(EMOJI * 1500), 200, "ok"),
    ("emoji over 3000 units", _section(EMOJI * 1500 + "x"), 400, "invalid_blocks"),
    ("empty message", {}, 400, "no_text"),
    ("unknown block", {"blocks": [{"type": "carousel"}]}, 400, "invalid_blocks"),
    (
        "header over 150",
        {
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
            ]
        },
        400,
        "invalid_blocks",
    ),
    (
        "eleven fields",
        {
            "blocks": [
                {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
            ]
        },
        400,
        "invalid_blocks",
    ),
    ("text over 40000", {"text": "t" * 40_001}, 400, "msg_too_long"),
]


@pytest.mark.parametrize(
    ("document", "status", "body"),
    [case[1:] for case in SLACK_CASES],
    ids=[case[0] for case in SLACK_CASES],
)
def test_slack_checks_messages(slack, document, status, body):
    response = _post(slack.webhook_url, document)

    assert (response.status_code, response.text) == (status, body)


def test_slack_refuses_wrong_urls_and_non_json(slack):
    wrong_token = slack.webhook_url[:-3] + "zzz"
    form = {
        "content": b"payload=%7B%7D",
        "headers": {"content-type": "x-www-form-urlencoded"},
    }

    answers = [
        _post(wrong_token, {"text": "hi"}),
        _post(slack.base_url + "/services/nope", {"text": "hi"}),
        _post(slack.webhook_url, **form),
        _post(
            slack.webhook_url,
            content=b"{",
            headers={"content-type": "application/json"},
        ),
    ]

    assert [(a.status_code, a.text) for a in answers] == [
        (403, "invalid_token"),
        (404, "no_service"),
        (400, "invalid_payload"),
        (400, "invalid_payload"),
    ]


def test_slack_programmed_rate_limit_answers_like_slack(slack):
    slack.fail_next(429, headers={"Retry-After": "7"})

    response = _post(slack.webhook_url, {"text": "hi"})

    assert (response.status_code, response.text) == (429, "rate_limited")
    assert response.headers["retry-after"] == "7"


@pytest.fixture(scope="module")
def teams() -> Iterator[TeamsReceiver]:
    """One Teams receiver for the module."""
    with TeamsReceiver() as receiver:
        yield receiver


def _card_message(**attachment: Any) -> dict[str, Any]:
    card = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": "hi"}],
    }
    item = {
        "contentType": ADAPTIVE_CARD_CONTENT_TYPE,
        "contentUrl": None,
        "content": card,
    }
    item.update(attachment)
    return {
        "type": "message",
        "attachments": [{k: v for k, v in item.items() if v != "-"}],
    }


TEAMS_CASES = [
    ("card message", _card_message(), 202, None),
    (
        "contentUrl missing",
        _card_message(contentUrl="-"),
        400,
        "'contentUrl' must be present",
    ),
    (
        "contentUrl set",
        _card_message(contentUrl="https://x"),
        400,
        "'contentUrl' must be present",
    ),
    (
        "wrong content type",
        _card_message(contentType="text/html"),
        400,
        "'contentType' must be",
    ),
    (
        "not a card",
        _card_message(content={"type": "Hero"}),
        400,
        "must be an AdaptiveCard",
    ),
    ("no attachments", {"type": "message", "attachments": []}, 400, "non-empty list"),
    ("not a message", {"type": "event"}, 400, "'type' must be 'message'"),
]


@pytest.mark.parametrize(
    ("document", "status", "message"),
    [case[1:] for case in TEAMS_CASES],
    ids=[case[0] for case in TEAMS_CASES],
)
def test_teams_checks_messages(teams, document, status, message):
    response = _post(teams.webhook_url, document)

    assert response.status_code == status
    if message is None:
        assert response.content == b""
    else:
        error = response.json()["error"]
        assert (
            error["code"] == "TriggerInputSchemaMismatch"
            and message in error["message"]
        )


def test_teams_refuses_oversized_bodies_and_wrong_urls(teams):
    oversized = _card_message()
    oversized["attachments"][0]["content"]["body"][0]["text"] = "x" * 28 * 1024

    answers = [
        _post(teams.webhook_url, oversized),
        _post(teams.webhook_url.replace("sig=", "sig=x"), _card_message()),
        _post(
            teams.webhook_url.replace("/workflows/", "/workflows/0"), _card_message()
        ),
    ]

    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [
        (413, "RequestEntityTooLarge"),
        (401, "DirectApiInvalidAuthorizationSignature"),
        (404, "WorkflowNotFound"),
    ]


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[PagerDutyReceiver]:
    """One PagerDuty receiver for the module."""
    with PagerDutyReceiver() as receiver:
        yield receiver


def _trigger(routing_key: str, **payload: Any) -> dict[str, Any]:
    body = {"summary": "s", "severity": "critical", "source": "router-1", **payload}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": "t/a",
        "payload": {k: v for k, v in body.items() if v is not None},
    }


def test_pagerduty_accepts_a_trigger_like_pagerduty(pagerduty):
    response = _post(pagerduty.events_url, _trigger(pagerduty.routing_key))

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "t/a",
    }


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"payload": {"summary": "s" * 1025, "severity": "info", "source": "x"}},
            "longer than 1024",
        ),
        (
            {"payload": {"summary": "s", "severity": "high", "source": "x"}},
            "'payload.severity' is invalid",
        ),
        (
            {"payload": {"summary": "s", "severity": "info"}},
            "'payload.source' is missing",
        ),
        ({"event_action": "resolve", "dedup_key": None}, "'dedup_key' is missing"),
        ({"event_action": "page"}, "'event_action' is invalid"),
        ({"dedup_key": "k" * 256}, "at most 255"),
        ({"routing_key": "short"}, "Length of 'routing_key' is incorrect"),
        ({"routing_key": "0" * 32}, "Invalid routing key"),
    ],
)
def test_pagerduty_refuses_invalid_events(pagerduty, change, error):
    event = {**_trigger(pagerduty.routing_key), **change}

    response = _post(
        pagerduty.events_url, {k: v for k, v in event.items() if v is not None}
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["message"]) == (
        "invalid event",
        "Event object is invalid",
    )
    assert any(error in message for message in body["errors"]), body


def test_pagerduty_refuses_unparsable_and_oversized_bodies(pagerduty):
    huge = _trigger(pagerduty.routing_key, custom_details={"d": "x" * 512 * 1024})

    unparsable = _post(
        pagerduty.events_url, content=b"{", headers={"content-type": "application/json"}
    )
    oversized = _post(pagerduty.events_url, huge)

    assert unparsable.status_code == 400
    assert unparsable.json()["status"] == "Unrecognized object"
    assert oversized.status_code == 400
    assert "512 KB" in oversized.json()["errors"][0]
