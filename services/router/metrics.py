"""Prometheus metrics of the router (``switchboard_router_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "switchboard_router_events_consumed", "Alert events read from the alerts topic."
)
EVENTS_MATCHED = Counter(
    "switchboard_router_events_matched", "Alert events that matched at least one rule."
)
JOBS_EMITTED = Counter(
    "switchboard_router_jobs_emitted",
    "Delivery commands produced, by channel type.",
    ["channel_type"],
)
JOBS_SUPPRESSED = Counter(
    "switchboard_router_jobs_suppressed",
    "Matches suppressed by a throttle window, by channel type.",
    ["channel_type"],
)
DEAD_LETTERED = Counter(
    "switchboard_router_dead_lettered",
    "Input messages that did not decode, sent to the router dead-letter topic.",
    ["reason"],
)
TRANSACTIONS_ABORTED = Counter(
    "switchboard_router_transactions_aborted",
    "Batches whose transaction aborted and were reprocessed.",
)
BATCH_SECONDS = Histogram(
    "switchboard_router_batch_seconds",
    "Time from the end of a poll to the commit of its transaction.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BATCH_EVENTS = Histogram(
    "switchboard_router_batch_events",
    "Input messages per transaction.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
)
RULES_INDEXED = Gauge(
    "switchboard_router_rules_indexed", "Routable rules in the matcher's index."
)
THROTTLE_WINDOWS = Gauge(
    "switchboard_router_throttle_windows", "Open throttle windows held in memory."
)
READY = Gauge(
    "switchboard_router_ready",
    "1 once the config cache caught up and the router consumes, else 0.",
)
