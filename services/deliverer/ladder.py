"""The retry ladder: which retry tier a failed attempt goes to, and when it is due.

It also places deferrals: a command whose channel is too slow to take it now
goes, unchanged but for its due time, to a tier's topic without using an
attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Tier:
    """One retry tier: its label (``10s``), delay and topic."""

    label: str
    delay_ms: int
    topic: str


@dataclass(frozen=True)
class RetryPlan:
    """Where and when the next attempt of a job runs."""

    tier: Tier
    attempt: int
    not_before: datetime


class RetryLadder:
    """Chooses the retry tier of a retryable outcome, or none when attempts run out."""

    def __init__(self, tiers: list[Tier], max_attempts: int) -> None:
        """``tiers`` shortest first; ``max_attempts`` counts the first attempt too."""
        if not tiers:
            raise ValueError("at least one retry tier is needed")
        self.tiers = tiers
        self.max_attempts = max_attempts

    def plan(
        self, attempt: int, retry_after_s: float | None, now: datetime
    ) -> RetryPlan | None:
        """The retry after failed ``attempt``, or None when it was the last one.

        Attempt N goes to tier N (the last tier repeats). A target's Retry-After
        moves it to the first tier at least that long, and the attempt is not due
        before the target asked, up to the longest tier's delay: a retry topic's
        partition is shared by many channels and waits for its head message, so
        one target asking for a week must not hold back everyone behind it.
        """
        if attempt >= self.max_attempts:
            return None
        index = min(attempt - 1, len(self.tiers) - 1)
        wait_ms = 0
        if retry_after_s is not None and retry_after_s > 0:
            wait_ms = int(min(retry_after_s * 1000, self.tiers[-1].delay_ms))
            index = max(index, self._first_tier_at_least(wait_ms))
        tier = self.tiers[index]
        delay = timedelta(milliseconds=max(tier.delay_ms, wait_ms))
        return RetryPlan(tier, attempt + 1, _ceil_ms(now + delay))

    def defer(self, attempt: int, now: datetime) -> RetryPlan:
        """Where a command waits when deferred, unattempted: the first tier.

        Due after that tier's delay, whichever topic it came from, so a command
        from the longest tier that meets a busy moment is not set back by that
        tier's whole delay again; ``attempt`` stays, since deferring is not an
        attempt. The first tier's topic stays in order of due time, which its
        consumer relies on when it holds a partition for its head message.
        """
        tier = self.tiers[0]
        delay = timedelta(milliseconds=tier.delay_ms)
        return RetryPlan(tier, attempt, _ceil_ms(now + delay))

    def _first_tier_at_least(self, wait_ms: int) -> int:
        for index, tier in enumerate(self.tiers):
            if tier.delay_ms >= wait_ms:
                return index
        return len(self.tiers) - 1


def _ceil_ms(moment: datetime) -> datetime:
    # Commands carry milliseconds; rounding down would make a retry due early.
    if moment.microsecond % 1000 == 0:
        return moment
    return moment + timedelta(microseconds=1000 - moment.microsecond % 1000)
