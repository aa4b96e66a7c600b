"""Properties of ``fit``, the cut every chat and paging channel relies on."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.deliverer.alert_view import (
    fit,
    json_string_bytes,
    utf8_bytes,
    utf16_units,
)
from services.deliverer.channels.slack.message import escape
from services.deliverer.text import TRUNCATION_MARKER

COSTS = {
    "chars": len,
    "utf16": utf16_units,
    "utf8": utf8_bytes,
    "json": json_string_bytes,
    "slack": lambda text: utf16_units(escape(text)),
}
# Text with the characters that make cutting hard: wide emoji, joiners,
# combining accents, variation selectors, and characters that escape.
ALPHABET = st.sampled_from(
    [
        "a",
        "é",
        "e\u0301",
        "🚨",
        "👩\u200d🚀",
        "❤\ufe0f",
        "👍🏽",
        "&",
        "<",
        '"',
        "\n",
        "東",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(ALPHABET, max_size=60),
    budget=st.integers(min_value=0, max_value=120),
    cost_name=st.sampled_from(sorted(COSTS)),
)
def test_fit_stays_within_budget_and_keeps_whole_characters(parts, budget, cost_name):
    cost = COSTS[cost_name]
    text = "".join(parts)

    result = fit(text, budget, cost)

    assert cost(result) <= budget or result == ""
    if result != text and result:
        kept = result.removesuffix(TRUNCATION_MARKER)
        assert result.endswith(TRUNCATION_MARKER) and text.startswith(kept)
        # The cut falls between the pieces the text was built from, so no
        # emoji, joined sequence or accent is split.
        boundaries = {len("".join(parts[:n])) for n in range(len(parts) + 1)}
        assert len(kept) in boundaries


@given(text=st.text(max_size=200), budget=st.integers(min_value=0, max_value=300))
def test_fit_returns_text_unchanged_when_it_fits(text, budget):
    result = fit(text, budget, utf8_bytes)

    assert (result == text) == (utf8_bytes(text) <= budget)
