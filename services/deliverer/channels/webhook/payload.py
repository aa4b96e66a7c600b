"""The JSON body the webhook channel POSTs: a documented, versioned payload.

Version 1::

    {
      "version": 1,
      "type": "alert.open",        # or alert.acknowledged, alert.closed
      "job_id": "<uuid>",          # the webhook-id header: idempotency key
      "attempt": 1,                # 2 for the first retry, and so on
      "tenant_id": "<uuid>",
      "channel_id": "<uuid>",
      "rule_id": "<uuid>" | null,        # null for a test notification
      "is_test": false,
      "alert": {
        "event_id": "...", "alert_id": "...",
        "kind": "OPEN", "severity": "CRITICAL",
        "alert_type": "...", "site_id": "..." | null, "device_id": "..." | null,
        "summary": "...", "details": "..." | null,
        "labels": {"key": "value"},
        "occurred_at": "2026-12-03T19:00:00.000Z",
        "source": "..."
      }
    }

A receiver deduplicates on ``job_id`` (every attempt of a job carries the same
one); ``attempt`` only tells it how many tries came before. New fields may be
added within a version; removing or changing one means version 2.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

PAYLOAD_VERSION = 1


def build_payload(command: dict[str, Any]) -> dict[str, Any]:
    """The version 1 payload of a DeliveryCommand."""
    alert = command["alert"]
    return {
        "version": PAYLOAD_VERSION,
        "type": f"alert.{str(alert['kind']).lower()}",
        "job_id": command["job_id"],
        "attempt": command["attempt"],
        "tenant_id": command["tenant_id"],
        "channel_id": command["channel_id"],
        "rule_id": command["rule_id"],
        "is_test": command.get("is_test", False),
        "alert": {
            "event_id": str(alert["event_id"]),
            "alert_id": alert["alert_id"],
            "kind": str(alert["kind"]),
            "severity": str(alert["severity"]),
            "alert_type": alert["alert_type"],
            "site_id": alert.get("site_id"),
            "device_id": alert.get("device_id"),
            "summary": alert["summary"],
            "details": alert.get("details"),
            "labels": dict(alert.get("labels") or {}),
            "occurred_at": _iso(alert["occurred_at"]),
            "source": alert["source"],
        },
    }


def encode_payload(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
