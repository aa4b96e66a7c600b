"""The PagerDuty Events API v2 event for one alert event.

From https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and
the published OpenAPI document: an alert's OPEN, ACKNOWLEDGED and CLOSED
events become ``trigger``, ``acknowledge`` and ``resolve`` with the same
``dedup_key``, so acknowledge and resolve reach the incident the trigger
opened and a re-sent trigger updates it instead of paging twice. A trigger's
``payload.summary`` holds at most 1,024 characters and an event at most
512 KB; when the event is too large, ``custom_details`` is reduced first and
the summary, severity, source and dedup key stay as they are. Every other
field is bounded on its own (source, class and group to 255 characters), so
only ``custom_details`` can grow with the alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.deliverer.alert_view import fit, json_string_bytes
from services.deliverer.channels.pagerduty.config import Config
from services.deliverer.http_post import json_bytes

EVENT_ACTIONS = {"OPEN": "trigger", "ACKNOWLEDGED": "acknowledge", "CLOSED": "resolve"}

# PagerDuty has four levels; HIGH pages as an error, LOW as a warning.
SEVERITIES = {
    "CRITICAL": "critical",
    "HIGH": "error",
    "MEDIUM": "warning",
    "LOW": "warning",
    "INFO": "info",
}

MAX_SUMMARY_CHARS = 1024
MAX_EVENT_BYTES = 512 * 1024
MAX_DEDUP_KEY_CHARS = 255
MAX_SOURCE_CHARS = 255
# PagerDuty documents no limit for class and group; the channel's own values
# are held to 255 characters when saved, and the alert's type or site standing
# in for them is held to the same, so they cannot push an event past 512 KB.
MAX_CLASS_CHARS = 255
MAX_GROUP_CHARS = 255
# The ids kept when custom details are left out to fit: enough for any real id.
MAX_KEPT_ID_CHARS = 255
CLIENT = "Switchboard"


def dedup_key(tenant_id: str, alert_id: str) -> str:
    """The same key for every event of one alert of one tenant.

    Readable (``tenant/alert``) where it fits PagerDuty's 255 characters,
    otherwise a SHA-256 of the same text, so it is stable either way.
    """
    key = f"{tenant_id}/{alert_id}"
    if len(key) <= MAX_DEDUP_KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def build_event(
    alert: dict[str, Any], routing_key: str, summary: str, config: Config
) -> dict[str, Any]:
    """The request body for ``alert``; ``summary`` is the (templated) summary."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": EVENT_ACTIONS[str(alert["kind"])],
        "dedup_key": dedup_key(alert["tenant_id"], alert["alert_id"]),
    }
    if event["event_action"] == "trigger":
        event["client"] = CLIENT
        event["payload"] = _payload(alert, summary, config)
    return reduce_to_limit(event)


def _payload(alert: dict[str, Any], summary: str, config: Config) -> dict[str, Any]:
    # PagerDuty refuses a blank summary or source: fall back to what is there.
    source = alert.get("device_id") or alert.get("site_id") or alert["source"]
    fallback = f"{alert['severity']} {alert['alert_type']}".strip()
    summary = summary.strip() or alert["summary"].strip() or fallback
    payload = {
        "summary": fit(summary, MAX_SUMMARY_CHARS),
        "severity": SEVERITIES[str(alert["severity"])],
        "source": fit(source.strip() or CLIENT, MAX_SOURCE_CHARS),
        "timestamp": _timestamp(alert["occurred_at"]),
        "class": fit(config.event_class or alert["alert_type"], MAX_CLASS_CHARS),
        "group": _fit_optional(config.group or alert.get("site_id"), MAX_GROUP_CHARS),
        "component": config.component,
        "custom_details": _custom_details(alert),
    }
    return {name: value for name, value in payload.items() if value is not None}


def _fit_optional(text: str | None, budget: int) -> str | None:
    return None if text is None else fit(text, budget)


def _timestamp(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _custom_details(alert: dict[str, Any]) -> dict[str, Any]:
    details = {
        # Characters past the size limit can never be sent (see reduce_to_limit).
        "details": (alert.get("details") or "")[: MAX_EVENT_BYTES + 1] or None,
        "alert_id": alert["alert_id"],
        "alert_type": alert["alert_type"],
        "event_kind": str(alert["kind"]),
        "severity": str(alert["severity"]),
        "site_id": alert.get("site_id"),
        "device_id": alert.get("device_id"),
        "source": alert["source"],
        "event_id": str(alert["event_id"]),
        "labels": dict(alert.get("labels") or {}),
    }
    return {name: value for name, value in details.items() if value is not None}


def event_size(event: dict[str, Any]) -> int:
    """The size PagerDuty limits: the compact JSON body in bytes."""
    return len(json_bytes(event))


def reduce_to_limit(event: dict[str, Any]) -> dict[str, Any]:
    """Shrink ``custom_details`` until the event fits :data:`MAX_EVENT_BYTES`.

    First the free-text details are cut, then the labels are dropped, then
    the custom details as a whole; nothing else is touched.
    """
    for reduce in _REDUCTIONS:
        overflow = event_size(event) - MAX_EVENT_BYTES
        if overflow <= 0:
            break
        reduce(event["payload"]["custom_details"], overflow)
    return event


def _cut_details(custom: dict[str, Any], overflow: int) -> None:
    details = custom.get("details")
    if details:
        budget = max(0, json_string_bytes(details) - overflow)
        custom["details"] = fit(details, budget, json_string_bytes)


def _drop_labels(custom: dict[str, Any], overflow: int) -> None:
    labels = custom.pop("labels", {})
    custom["labels_omitted"] = f"{len(labels)} labels left out to fit 512 KB"


def _drop_all(custom: dict[str, Any], overflow: int) -> None:
    kept = {
        name: _fit_optional(custom.get(name), MAX_KEPT_ID_CHARS)
        for name in ("alert_id", "event_id")
    }
    custom.clear()
    custom.update(kept, omitted="custom details left out to fit 512 KB")


_REDUCTIONS: tuple[Callable[[dict[str, Any], int], None], ...] = (
    _cut_details,
    _drop_labels,
    _drop_all,
)
