"""How an alert reads to a person, shared by the chat channels (Slack, Teams).

An :class:`AlertView` holds the same facts in the same order for every chat
channel: a headline (the summary, or a customer template's output), the facts
table (severity, event, alert type, site, device, time), the details and a
footer. Channel modules only lay these out in their vendor's format and fit
them into the vendor's limits with :func:`fit`.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.deliverer.templates import alert_context, render
from services.deliverer.text import TRUNCATION_MARKER

# A summary is one line; anything longer is details in the wrong field.
# PagerDuty's documented summary limit, used for every channel alike.
MAX_HEADLINE_CHARS = 1024
# Upstream ids and names, shown in the facts table.
MAX_FACT_CHARS = 256

EVENT_WORDS = {"OPEN": "opened", "ACKNOWLEDGED": "acknowledged", "CLOSED": "closed"}

# Characters that extend the grapheme before them: cutting in front of one
# would separate an emoji from its modifier or a letter from its accent.
_ZWJ = "\u200d"
_VARIATION_SELECTORS = {"\ufe0e", "\ufe0f"}


@dataclass(frozen=True)
class AlertView:
    """The human-readable parts of one alert event."""

    title: str
    headline: str
    facts: tuple[tuple[str, str], ...]
    details: str | None
    footer: str


def alert_view(
    command: Mapping[str, Any], template: str | None = None, channel_name: str = ""
) -> AlertView:
    """Build the view of a command's alert; ``template`` replaces the headline.

    Raises :class:`services.deliverer.templates.TemplateError` if the template
    fails to render.
    """
    alert = command["alert"]
    headline = alert["summary"]
    if template:
        headline = render(template, alert_context(dict(command), channel_name))
    return AlertView(
        title=title(alert),
        headline=fit(_first_text(headline, alert), MAX_HEADLINE_CHARS),
        facts=facts(alert),
        details=alert.get("details") or None,
        footer=fit(f"{alert['source']} · alert {alert['alert_id']}", MAX_FACT_CHARS),
    )


def _first_text(headline: str, alert: Mapping[str, Any]) -> str:
    # Vendors refuse empty text blocks; an empty template output or summary
    # falls back to the summary, then to the title.
    return headline.strip() or alert["summary"].strip() or title(alert)


def title(alert: Mapping[str, Any]) -> str:
    """A short fixed-vocabulary title such as ``CRITICAL alert opened``."""
    return f"{alert['severity']} alert {EVENT_WORDS[str(alert['kind'])]}"


def facts(alert: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The facts table, in display order; absent site or device read ``-``."""
    rows = (
        ("Severity", str(alert["severity"])),
        ("Event", str(alert["kind"])),
        ("Alert type", alert["alert_type"]),
        ("Site", alert.get("site_id") or "-"),
        ("Device", alert.get("device_id") or "-"),
        ("Time", format_time(alert["occurred_at"])),
    )
    return tuple((label, fit(value, MAX_FACT_CHARS)) for label, value in rows)


def format_time(value: datetime | str) -> str:
    """A timestamp as ``2026-12-03 19:11:31 UTC`` (strings pass through)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return str(value)


def fit(
    text: str,
    budget: int,
    cost: Callable[[str], int] = len,
    marker: str = TRUNCATION_MARKER,
) -> str:
    """Cut ``text`` so ``cost(result) <= budget``, ending with ``marker`` if cut.

    ``cost`` measures a string in the vendor's unit (characters, UTF-16 code
    units, UTF-8 bytes, escaped length): additive over characters, and at
    least 1 for each.
    The cut never splits a character and never separates a character from
    the combining marks, variation selectors or joiners that follow it.
    """
    # A text with more characters than the budget is over it without measuring.
    if len(text) <= budget and cost(text) <= budget:
        return text
    room = budget - cost(marker)
    if room < 0:
        return ""
    return text[: _grapheme_start(text, _longest_prefix(text, room, cost))] + marker


def _longest_prefix(text: str, room: int, cost: Callable[[str], int]) -> int:
    """The largest ``end`` with ``cost(text[:end]) <= room``.

    A binary search that measures only the slice between the last prefix
    known to fit and the probe (``cost`` is additive), so the work stays in the
    C implementations of ``cost`` and is linear in the text: megabytes of
    details are fitted in milliseconds, without holding up the event loop.
    """
    # Every character costs at least 1, so no more than ``room`` of them fit.
    low, high, used = 0, min(len(text), room), 0
    while low < high:
        middle = (low + high + 1) // 2
        extra = cost(text[low:middle])
        if used + extra <= room:
            low, used = middle, used + extra
        else:
            high = middle - 1
    return low


def _grapheme_start(text: str, index: int) -> int:
    """Move ``index`` back until it does not fall inside a grapheme cluster."""
    while 0 < index < len(text) and _extends_previous(text, index):
        index -= 1
    return index


def _extends_previous(text: str, index: int) -> bool:
    char = text[index]
    return (
        unicodedata.combining(char) != 0
        or char in _VARIATION_SELECTORS
        or char == _ZWJ
        or text[index - 1] == _ZWJ
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin tone modifiers
    )


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units, how JavaScript-based services count."""
    return len(text.encode("utf-16-le")) // 2


def utf8_bytes(text: str) -> int:
    """Length of the UTF-8 encoding."""
    return len(text.encode("utf-8"))


def json_string_bytes(text: str) -> int:
    """Bytes ``text`` takes inside a compact UTF-8 JSON string, escapes included."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2
