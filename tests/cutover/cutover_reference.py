"""The old routes' semantics, as a plain reference, and the events to compare on.

A route selects its integration when the route and the integration are enabled,
the integration exists, and every non-NULL, non-empty matcher matches;
severities and kinds compare case-insensitively; every matching route delivers
(old routes had no stop-on-match and no throttle).
"""

from __future__ import annotations

import itertools
from typing import Any

import psycopg
from cutover_fixture import Legacy
from psycopg.rows import dict_row

from switchboard.domain import EventKind, Severity

UNCONVERTIBLE_INTEGRATIONS = ("sms", "bad_url", "no_from", "private")
# What an operator skips after reading the plan: the broken integrations (which
# covers their routes and jobs), the two broken routes and the unfinished jobs.
SKIPPED = (
    *UNCONVERTIBLE_INTEGRATIONS,
    "r_deleted",
    "r_bad_severity",
    "j_pending",
    "j_processing",
)


def rows(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    """Every row of ``query`` as a dict."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def old_route_selects(
    route: dict[str, Any], integration: dict | None, event: dict[str, Any]
) -> bool:
    """Whether one old route selects its integration for ``event``."""
    if not route["enabled"] or integration is None or not integration["enabled"]:
        return False
    if route["tenant_id"] != event["tenant_id"]:
        return False
    if route["site_ids"] and event["site_id"] not in route["site_ids"]:
        return False
    prefixes = route["device_prefixes"]
    if prefixes and not (
        event["device_id"] and any(event["device_id"].startswith(p) for p in prefixes)
    ):
        return False
    if route["alert_types"] and event["alert_type"] not in route["alert_types"]:
        return False
    minimum = route["min_severity"]
    if minimum and Severity(event["severity"]).rank < Severity(minimum.upper()).rank:
        return False
    kinds = {kind.upper() for kind in route["deliver_on"] or []}
    return not kinds or event["kind"] in kinds


def old_selection(legacy: Legacy, event: dict[str, Any], skipped: set[str]) -> set[str]:
    """The integrations the old routes select for ``event``, minus skipped ids."""
    integrations = {row["id"]: row for row in legacy.integrations}
    return {
        route["integration_id"]
        for route in legacy.routes
        if route["id"] not in skipped
        and route["integration_id"] not in skipped
        and old_route_selects(route, integrations.get(route["integration_id"]), event)
    }


def events(legacy: Legacy) -> list[dict[str, Any]]:
    """Every combination of tenant, site, device, type, severity and kind."""
    grid = itertools.product(
        (legacy.known_tenant, legacy.new_tenant),
        (None, "site-a", "site-b", "site-c"),
        (None, "core-1", "lab-7", "lab2-x", "edge-1"),
        ("link_down", "power", "temp", "other"),
        [str(s) for s in Severity],
        [str(k) for k in EventKind],
    )
    return [
        {
            "tenant_id": tenant,
            "site_id": site,
            "device_id": device,
            "alert_type": kind,
            "severity": severity,
            "kind": event_kind,
        }
        for tenant, site, device, kind, severity, event_kind in grid
    ]
