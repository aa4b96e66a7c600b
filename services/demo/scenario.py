"""A realistic alert stream and a set of routing rules that exercise every field.

The stream covers a few hundred devices across several sites: every severity
and alert type; alerts that open, some acknowledged, most closed; some OPENs
repeated a few seconds later, inside the throttle windows of the rules that
have one. The rules use every matcher field, ``stop_on_match``, a throttle and a
disabled rule, one rule per channel type so that every type gets traffic.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SITES = ("ams-1", "fra-1", "lon-2", "nyc-3", "sgp-1", "syd-2")
ROLES = ("core", "edge", "acc")
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
ALERT_TYPES = (
    "link_down",
    "bgp_down",
    "cpu_high",
    "temp_high",
    "power_supply",
    "disk_full",
)
SOURCE = "switchboard-demo"

ACKNOWLEDGED_SHARE = 0.3
CLOSED_SHARE = 0.8
REPEAT_SHARE = 0.15


@dataclass(frozen=True)
class PlannedEvent:
    """One event of the stream; ``at_s`` orders it (seconds from the start)."""

    at_s: float
    alert_id: str
    kind: str
    severity: str
    alert_type: str
    site_id: str
    device_id: str

    def to_alert(self, tenant_id: str, occurred_at: datetime) -> dict[str, Any]:
        """The AlertEvent record, occurring at ``occurred_at`` (publish time)."""
        return {
            "event_id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "alert_id": self.alert_id,
            "kind": self.kind,
            "severity": self.severity,
            "alert_type": self.alert_type,
            "site_id": self.site_id,
            "device_id": self.device_id,
            "summary": f"{self.alert_type.replace('_', ' ')} on {self.device_id}",
            "details": f"{self.severity} {self.alert_type} at {self.site_id}",
            "labels": {"role": self.device_id.split("-")[0], "site": self.site_id},
            "occurred_at": occurred_at,
            "source": SOURCE,
        }


@dataclass
class Stream:
    """Planned events in publish order, and how many devices they come from."""

    events: list[PlannedEvent] = field(default_factory=list)
    devices: int = 0


def devices(count: int) -> list[tuple[str, str]]:
    """``count`` (site, device id) pairs spread over sites and roles."""
    return [
        (
            SITES[i % len(SITES)],
            f"{ROLES[i % len(ROLES)]}-{SITES[i % len(SITES)]}-{i:03d}",
        )
        for i in range(count)
    ]


def plan_stream(device_count: int, duration_s: float, seed: int = 7) -> Stream:
    """One alert per device, its life spread over ``duration_s`` seconds."""
    rng = random.Random(seed)
    events: list[PlannedEvent] = []
    for index, (site, device) in enumerate(devices(device_count)):
        severity = SEVERITIES[index % len(SEVERITIES)]
        alert_type = ALERT_TYPES[(index // len(SEVERITIES)) % len(ALERT_TYPES)]
        events += _alert_life(
            rng,
            f"{device}-{alert_type}",
            severity,
            alert_type,
            site,
            device,
            duration_s,
        )
    events.sort(key=lambda e: e.at_s)
    return Stream(events, device_count)


def _alert_life(
    rng: random.Random,
    alert_id: str,
    severity: str,
    alert_type: str,
    site: str,
    device: str,
    duration_s: float,
) -> list[PlannedEvent]:
    opened = rng.uniform(0, duration_s * 0.6)
    kinds = [(opened, "OPEN")]
    if rng.random() < REPEAT_SHARE:
        kinds.append((opened + rng.uniform(1, 4), "OPEN"))
    if rng.random() < ACKNOWLEDGED_SHARE:
        kinds.append((opened + rng.uniform(4, 8), "ACKNOWLEDGED"))
    if rng.random() < CLOSED_SHARE:
        kinds.append((opened + rng.uniform(8, duration_s * 0.4), "CLOSED"))
    return [
        PlannedEvent(at, alert_id, kind, severity, alert_type, site, device)
        for at, kind in kinds
    ]


def demo_rules(channel_ids: dict[str, str]) -> list[dict[str, Any]]:
    """The rule bodies for the API; ``channel_ids`` maps channel type to id."""
    return [
        _rule(
            channel_ids["snmp"],
            "AMS and FRA power to the NMS, nothing else",
            5,
            site_ids=["ams-1", "fra-1"],
            alert_types=["power_supply"],
            stop_on_match=True,
        ),
        _rule(
            channel_ids["pagerduty"],
            "Core HIGH and worse pages on call",
            10,
            device_prefixes=["core-"],
            min_severity="HIGH",
            throttle_minutes=10,
        ),
        _rule(
            channel_ids["slack"],
            "Links and BGP to the NOC channel",
            20,
            alert_types=["link_down", "bgp_down"],
            deliver_on=["OPEN", "CLOSED"],
            throttle_minutes=5,
        ),
        _rule(
            channel_ids["teams"],
            "HIGH and worse to the operations team",
            30,
            min_severity="HIGH",
        ),
        _rule(channel_ids["webhook"], "Everything to the ticketing webhook", 40),
        _rule(
            channel_ids["email"],
            "Edge MEDIUM and worse openings by mail",
            50,
            device_prefixes=["edge-"],
            min_severity="MEDIUM",
            deliver_on=["OPEN"],
            throttle_minutes=15,
        ),
        _rule(
            channel_ids["mqtt"],
            "Heat and CPU in three sites to the dashboard",
            60,
            site_ids=["lon-2", "nyc-3", "sgp-1"],
            alert_types=["temp_high", "cpu_high"],
        ),
        _rule(channel_ids["email"], "Disabled: everything by mail", 70, enabled=False),
    ]


def _rule(channel_id: str, name: str, priority: int, **fields: Any) -> dict[str, Any]:
    return {"channel_id": channel_id, "name": name, "priority": priority, **fields}


def utc_now() -> datetime:
    """Now, in UTC, to the millisecond (what Avro timestamp-millis keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
