"""The deliverer's pure parts: retry ladder and deferrals, offsets, redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.deliverer.channels.slack.config import Secrets as SlackSecrets
from services.deliverer.ladder import RetryLadder, Tier
from services.deliverer.offsets import OffsetTracker
from services.deliverer.outcome import MAX_RETRY_AFTER_S, parse_retry_after
from services.deliverer.redact import REDACTED, redact, secret_values

TIERS = [
    Tier("10s", 10_000, "r10s"),
    Tier("1m", 60_000, "r1m"),
    Tier("1h", 3_600_000, "r1h"),
]
NOW = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "retry_after_s", "tier", "wait_s"),
    [
        (1, None, "10s", 10),
        (2, None, "1m", 60),
        (3, None, "1h", 3600),
        (5, None, "1h", 3600),
        (1, 30, "1m", 60),
        (1, 5, "10s", 10),
        (2, 3600, "1h", 3600),
    ],
)
def test_ladder_picks_the_tier_and_never_an_earlier_time(
    attempt: int, retry_after_s: float | None, tier: str, wait_s: int
) -> None:
    plan = RetryLadder(TIERS, max_attempts=6).plan(attempt, retry_after_s, NOW)

    assert plan.tier.label == tier
    assert plan.attempt == attempt + 1
    assert plan.not_before >= NOW + timedelta(seconds=wait_s)
    assert plan.not_before.microsecond % 1000 == 0


@pytest.mark.parametrize("retry_after_s", [7200, 7 * 24 * 3600, 10**9])
def test_a_retry_after_beyond_the_longest_tier_waits_that_tier_only(
    retry_after_s: float,
) -> None:
    plan = RetryLadder(TIERS, max_attempts=6).plan(1, retry_after_s, NOW)

    assert plan.tier.label == "1h"
    assert NOW + timedelta(hours=1) <= plan.not_before
    assert plan.not_before < NOW + timedelta(hours=1, seconds=1)


def test_an_unbounded_retry_after_still_plans_the_longest_tier() -> None:
    plan = RetryLadder(TIERS, max_attempts=6).plan(1, float("inf"), NOW)

    assert plan.tier.label == "1h"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Thu, 03 Dec 2026 12:01:30 GMT", 90.0),
        ("Thu, 03 Dec 2026 11:00:00 GMT", 0.0),
        ("9" * 400, MAX_RETRY_AFTER_S),
        ("Sat, 03 Dec 2126 12:00:00 GMT", MAX_RETRY_AFTER_S),
        ("\u00b2", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, now_s=NOW.timestamp()) == seconds


def test_ladder_stops_after_the_last_attempt() -> None:
    assert RetryLadder(TIERS, max_attempts=6).plan(6, None, NOW) is None


@pytest.mark.parametrize("attempt", [1, 2, 5])
def test_a_deferral_keeps_its_attempt_and_waits_the_first_tier(attempt: int) -> None:
    plan = RetryLadder(TIERS, max_attempts=6).defer(attempt, NOW)

    assert plan.tier.label == "10s"
    assert plan.attempt == attempt
    assert plan.not_before >= NOW + timedelta(seconds=10)
    assert plan.not_before < NOW + timedelta(seconds=10, milliseconds=1)


def test_offsets_are_stored_only_up_to_the_lowest_unfinished() -> None:
    tracker = OffsetTracker()
    tokens = {offset: tracker.begin("t", 0, offset) for offset in (5, 6, 7)}

    assert tracker.finish(tokens[7], 7) == 5
    assert tracker.finish(tokens[6], 6) is None
    assert tracker.finish(tokens[5], 5) == 8


def test_work_from_a_revoked_assignment_stores_nothing() -> None:
    tracker = OffsetTracker()
    old = tracker.begin("t", 0, 10)
    tracker.forget([("t", 0)])
    new = tracker.begin("t", 0, 10)

    assert tracker.finish(old, 10) is None
    assert tracker.finish(new, 10) == 11


def test_secret_urls_are_redacted_in_every_printed_form() -> None:
    url = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
    secrets = secret_values(SlackSecrets(webhook_url=url))
    text = (
        f"ConnectError for {url}: refused; path /services/T0000/B0000/"
        "XXXXXXXXXXXXXXXXXXXXXXXX"
    )

    cleaned = redact(text, secrets)

    assert "XXXXXXXX" not in cleaned
    assert "T0000" not in cleaned
    assert REDACTED in cleaned
