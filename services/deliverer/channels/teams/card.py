"""The Teams Workflows message: one Adaptive Card 1.4 in a ``message`` envelope.

The envelope is what a Workflows "post to a channel when a webhook request is
received" flow expects (https://learn.microsoft.com/microsoftteams/platform/
webhooks-and-connectors/how-to/connectors-using): ``type: message`` and an
``attachments`` list whose item has ``contentType``
``application/vnd.microsoft.card.adaptive``, ``contentUrl`` null and the card
as ``content``. Teams refuses messages over about 28 KB
(https://learn.microsoft.com/microsoftteams/limits-specifications-teams), so
the whole request body is kept within :data:`MAX_MESSAGE_BYTES` by cutting
the details, the only part without a bound of its own.
"""

from __future__ import annotations

from typing import Any

from services.deliverer.alert_view import AlertView, fit, json_string_bytes
from services.deliverer.http_post import json_bytes

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"

# "About 28 KB" in Microsoft's words; 28,000 bytes is within it however a KB
# is counted, and leaves room for what the flow adds around the card.
MAX_MESSAGE_BYTES = 28_000

TITLE_COLORS = {
    "CRITICAL": "attention",
    "HIGH": "attention",
    "MEDIUM": "warning",
    "LOW": "accent",
    "INFO": "default",
}
CLOSED_COLOR = "good"


def build_message(view: AlertView, severity: str, kind: str) -> dict[str, Any]:
    """The webhook body, within :data:`MAX_MESSAGE_BYTES` of compact JSON."""
    # Characters past the size limit can never be sent; dropping them first
    # keeps the measuring below cheap for megabytes of details.
    details = view.details[: MAX_MESSAGE_BYTES + 1] if view.details else None
    message = _message(view, severity, kind, details)
    overflow = len(json_bytes(message)) - MAX_MESSAGE_BYTES
    if overflow <= 0 or not details:
        return message
    budget = json_string_bytes(details) - overflow
    return _message(view, severity, kind, fit(details, budget, json_string_bytes))


def _message(
    view: AlertView, severity: str, kind: str, details: str | None
) -> dict[str, Any]:
    attachment = {
        "contentType": ADAPTIVE_CARD_CONTENT_TYPE,
        "contentUrl": None,
        "content": build_card(view, severity, kind, details),
    }
    return {"type": "message", "attachments": [attachment]}


def build_card(
    view: AlertView, severity: str, kind: str, details: str | None
) -> dict[str, Any]:
    """The Adaptive Card: title, headline, facts, details, footer."""
    color = CLOSED_COLOR if kind == "CLOSED" else TITLE_COLORS.get(severity, "default")
    body: list[dict[str, Any]] = [
        _text(view.title, size="large", weight="bolder", color=color),
        _text(view.headline),
        {
            "type": "FactSet",
            "facts": [{"title": label, "value": value} for label, value in view.facts],
        },
    ]
    if details:
        body.append(_text(details, fontType="monospace", separator=True))
    body.append(_text(view.footer, size="small", isSubtle=True))
    return {
        "type": "AdaptiveCard",
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "version": ADAPTIVE_CARD_VERSION,
        "fallbackText": f"{view.title}: {view.headline}",
        "body": body,
    }


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}
