"""Turning an old route into the fields of a routing rule.

Old routes select the same things a rule does (sites, device prefixes, alert
types, a minimum severity, event kinds) with three differences handled here:
NULL arrays mean "no filter" (a rule's empty list), severities and kinds may be
in any case (rules use the upper-case names), and old routes had neither
``stop_on_match`` nor a throttle, so every matching route delivered: rules get
``stop_on_match`` false and ``throttle_minutes`` 0.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.cutover.legacy import LegacyRoute

# The API's default priority, for old routes that had none.
DEFAULT_PRIORITY = 100


def rule_fields(route: LegacyRoute, channel_id: uuid.UUID, channel_name: str) -> dict:
    """The RuleCreate body for ``route`` delivering to ``channel_id``."""
    return {
        "channel_id": str(channel_id),
        "name": _name(route, channel_name),
        "priority": DEFAULT_PRIORITY if route.priority is None else route.priority,
        "site_ids": list(route.site_ids or []),
        "device_prefixes": list(route.device_prefixes or []),
        "alert_types": list(route.alert_types or []),
        "min_severity": _upper(route.min_severity) or None,
        "deliver_on": _kinds(route.deliver_on),
        "throttle_minutes": 0,
        "stop_on_match": False,
        "enabled": route.enabled,
    }


def _name(route: LegacyRoute, channel_name: str) -> str:
    if route.name and route.name.strip():
        return route.name
    return f"Route to {channel_name}"[:200]


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _kinds(values: list[str] | None) -> list[Any]:
    # The old system accepted a kind twice in different cases; a rule lists it once.
    kinds: list[Any] = []
    for value in values or []:
        kind = _upper(value)
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def may_both_match(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether some alert event could match both rules (given as RuleCreate fields).

    Every matcher must leave a common value: kinds, sites and alert types must
    intersect (an empty list accepts all), and some device prefix of one must
    extend a prefix of the other. Minimum severities always share CRITICAL.
    """
    if not (first["enabled"] and second["enabled"]):
        return False
    for name in ("deliver_on", "site_ids", "alert_types"):
        if first[name] and second[name] and not set(first[name]) & set(second[name]):
            return False
    prefixes, others = first["device_prefixes"], second["device_prefixes"]
    if prefixes and others:
        return any(a.startswith(b) or b.startswith(a) for a in prefixes for b in others)
    return True
