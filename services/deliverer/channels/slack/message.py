"""The Slack incoming-webhook message: Block Kit blocks plus a fallback text.

Slack's limits, from https://api.slack.com/reference/block-kit/blocks and
https://api.slack.com/reference/surfaces/formatting#escaping: a section's text
holds at most 3,000 characters, each section field 2,000, a header 150; the
characters ``&``, ``<`` and ``>`` in mrkdwn text must be written as ``&amp;``,
``&lt;`` and ``&gt;``, and nothing else is escaped. Lengths are counted in
UTF-16 code units here, which is never less than the character count, so a
text within our count is within Slack's however Slack counts.
"""

from __future__ import annotations

from typing import Any

from services.deliverer.alert_view import AlertView, fit, utf16_units

MAX_TEXT_BLOCK_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_HEADER_CHARS = 150

SEVERITY_EMOJI = {
    "CRITICAL": ":red_circle:",
    "HIGH": ":large_orange_circle:",
    "MEDIUM": ":large_yellow_circle:",
    "LOW": ":large_blue_circle:",
    "INFO": ":white_circle:",
}
CLOSED_EMOJI = ":white_check_mark:"


def escape(text: str) -> str:
    """Escape ``text`` for Slack mrkdwn; applied exactly once, to raw text."""
    # "&" first, so the "&" of the other two escapes is not escaped again.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped_units(text: str) -> int:
    return utf16_units(escape(text))


def mrkdwn(text: str, max_chars: int = MAX_TEXT_BLOCK_CHARS) -> str:
    """Raw ``text`` escaped and cut so the escaped form fits ``max_chars``.

    The cut is made on the raw text, so an escape sequence is never split.
    """
    return escape(fit(text, max_chars, cost=_escaped_units))


def build_message(view: AlertView, severity: str, kind: str) -> dict[str, Any]:
    """The webhook body for one alert event."""
    blocks = [
        _header(view, severity, kind),
        _section(view.headline),
        {
            "type": "section",
            "fields": [_field(label, value) for label, value in view.facts],
        },
    ]
    if view.details:
        blocks.append(_section(view.details))
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": mrkdwn(view.footer)}],
        }
    )
    return {"text": mrkdwn(f"{view.title}: {view.headline}"), "blocks": blocks}


def _header(view: AlertView, severity: str, kind: str) -> dict[str, Any]:
    emoji = CLOSED_EMOJI if kind == "CLOSED" else SEVERITY_EMOJI.get(severity, "")
    text = fit(f"{emoji} {view.title}".strip(), MAX_HEADER_CHARS, cost=utf16_units)
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": text, "emoji": True},
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(text)}}


def _field(label: str, value: str) -> dict[str, Any]:
    prefix = f"*{label}*\n"
    budget = MAX_FIELD_CHARS - utf16_units(prefix)
    return {"type": "mrkdwn", "text": prefix + mrkdwn(value, budget)}
