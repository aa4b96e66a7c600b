"""One INFO line a minute about scheduled retries, instead of one per retry.

Each retry is logged at DEBUG; a channel that goes down would otherwise fill
the log with a line per job and attempt. Operators still see at INFO that
retries are happening, how many and why, at most once per interval. Deferrals
(commands set aside while their channel is slow) are summed up the same way.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger(__name__)

SUMMARY_INTERVAL_S = 60.0


class RetryTally:
    """Counts scheduled retries by channel type and reason; logs them in summary."""

    def __init__(
        self,
        interval_s: float = SUMMARY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        message: str = "retries scheduled",
        field: str = "by_reason",
    ) -> None:
        """Log at most one summary per ``interval_s`` seconds of ``clock``.

        The summary is ``message`` with the counts by type and detail in the
        field ``field``.
        """
        self._message = message
        self._field = field
        self._interval_s = interval_s
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._since = clock()
        self._last_logged = float("-inf")

    def count(self, channel_type: str, detail: str) -> None:
        """Count one event; log the summary if the last one is old enough."""
        self._counts[f"{channel_type}/{detail}"] += 1
        now = self._clock()
        if now - self._last_logged < self._interval_s:
            return
        # The first retry after a quiet spell is logged at once, so the start
        # of an outage shows up without waiting for the interval.
        log.info(
            self._message,
            extra={
                "count": sum(self._counts.values()),
                self._field: ",".join(
                    f"{key}={n}" for key, n in sorted(self._counts.items())
                ),
                "since_s": round(now - self._since, 1),
            },
        )
        self._counts.clear()
        self._since = now
        self._last_logged = now
