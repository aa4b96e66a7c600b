"""The cutover's report, as text for people and as JSON for machines.

Both forms carry the same content: per tenant and channel type, the channels
and rules to create (or converted by an earlier run), the history to carry
over (or left behind with ``--skip-history``), then every row that is
unfinished, unconvertible or skipped. Secrets never
appear: a channel lists the names of its secrets, URL query values and
credentials are masked, and so are header values that look like credentials.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from services.cutover.apply import Applied
from services.cutover.convert import CREDENTIAL_HEADER
from services.cutover.create import secret_names
from services.cutover.drop import Dropped
from services.cutover.plan import ChannelItem, JobItem, Plan, RuleItem, tenant_name
from services.deliverer.channels import CHANNEL_SPECS
from switchboard.domain import ChannelType

MASK = "***"
STOP_OLD_SYSTEM_NOTE = (
    "Note: stop the old system's delivery workers when applying; while both run, "
    "an alert is delivered by both."
)
HISTORY_NOTE = (
    "published to notify.jobs through the outbox relay and written to the job "
    "tables by the recorder; they show once both have run"
)
HISTORY_LEFT_BEHIND_NOTE = (
    "finished old jobs and their attempts are not carried over and do not block "
    "--drop-legacy; dropping the old tables deletes them"
)
TENANT_NOTE = (
    "created with the old id so their alerts keep routing, named legacy-<id>, "
    "without an API key; issue one with `switchboard tenant key legacy-<id>`"
)


def masked(value: Any, key: str = "") -> Any:
    """``value`` with URL credentials, query values and credential headers hidden."""
    if isinstance(value, dict):
        return {
            k: MASK
            if key == "headers" and CREDENTIAL_HEADER.search(str(k))
            else masked(v, str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(item, key) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return _masked_url(value)
    return value


def _masked_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username or parts.password:
        netloc = f"{MASK}@{netloc}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _non_default(channel_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config fields that differ from the type's defaults: what was carried over."""
    fields = CHANNEL_SPECS[ChannelType(channel_type)].config_model.model_fields
    shown = {}
    for name, value in config.items():
        spec = fields.get(name)
        if spec is None or spec.is_required():
            shown[name] = value
            continue
        default = spec.get_default(call_default_factory=True)
        if value != default:
            shown[name] = value
    return shown


def _channel_json(item: ChannelItem) -> dict[str, Any]:
    body: dict[str, Any] = {
        "legacy_integration_id": str(item.legacy_id),
        "channel_id": str(item.channel_id),
        "name": item.name,
        "enabled": item.enabled,
        "action": "exists" if item.exists else "create",
    }
    if item.channel is not None:
        body["config"] = masked(item.channel.config)
        body["secrets_set"] = secret_names(item.channel.secrets)
        body["warnings"] = list(item.warnings)
    return body


def _rule_json(item: RuleItem) -> dict[str, Any]:
    body = {
        "legacy_route_id": str(item.legacy_id),
        "rule_id": str(item.rule_id),
        "name": item.name,
        "action": "exists" if item.exists else "create",
    }
    if item.channel_name:
        body["channel_name"] = item.channel_name
    return {**body, **{k: v for k, v in item.fields.items() if k != "name"}}


def _history_json(jobs: list[JobItem]) -> dict[str, int]:
    counts = {"delivered": 0, "dead": 0, "attempts": 0, "copied_before": 0}
    for item in jobs:
        if item.exists:
            counts["copied_before"] += 1
            continue
        counts[item.state] += 1
        counts["attempts"] += item.copy.attempts if item.copy else 0
    return counts


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON values; secrets only by name."""
    return {
        "legacy_tables": list(plan.legacy_tables),
        "tenants_to_create": [
            {"id": str(t), "name": tenant_name(t)} for t in plan.tenants_to_create
        ],
        "tenants_note": TENANT_NOTE,
        "tenants": _by_tenant(plan),
        "pending_jobs": [
            {
                "legacy_job_id": str(p.legacy_id),
                "tenant_id": p.tenant_id,
                "status": p.status,
                "legacy_integration_id": str(p.integration_id),
            }
            for p in plan.pending_jobs
        ],
        "unconvertible": [
            {
                "table": u.table,
                "legacy_id": u.legacy_id,
                "tenant_id": u.tenant_id,
                "name": u.name,
                "problems": [{"field": f, "problem": p} for f, p in u.problems],
            }
            for u in plan.unconvertible
        ],
        "skipped": [{"table": t, "legacy_id": i} for t, i in plan.skipped],
        "history_left_behind": _left_behind_json(plan),
        "warnings": list(plan.warnings),
        "summary": summary(plan),
    }


def _left_behind_json(plan: Plan) -> dict[str, Any] | None:
    """With --skip-history: what is left behind, or None when history is kept."""
    if not plan.skip_history:
        return None
    return {
        "jobs": len(plan.history_left_behind),
        "attempts": plan.attempts_left_behind,
        "note": HISTORY_LEFT_BEHIND_NOTE,
    }


def _by_tenant(plan: Plan) -> dict[str, Any]:
    """Channels, rules and history counts, per tenant and channel type."""
    tenants: dict[str, dict[str, dict[str, Any]]] = defaultdict(
        lambda: {
            "channels": defaultdict(list),
            "rules": defaultdict(list),
            "history": {},
        }
    )
    for channel in plan.channels:
        tenant = tenants[str(channel.tenant_id)]
        tenant["channels"][channel.channel_type].append(_channel_json(channel))
    for rule in plan.rules:
        tenants[str(rule.tenant_id)]["rules"][rule.channel_type].append(
            _rule_json(rule)
        )
    jobs: dict[tuple[str, str], list[JobItem]] = defaultdict(list)
    for job in plan.jobs:
        jobs[(str(job.tenant_id), job.channel_type)].append(job)
    for (tenant_id, kind), items in jobs.items():
        tenants[tenant_id]["history"][kind] = _history_json(items)
    # Plain dicts all the way down, in a stable order.
    return json.loads(json.dumps(tenants, sort_keys=True))


def summary(plan: Plan) -> dict[str, int]:
    """The counts that tell at a glance what the plan does."""
    new_jobs = plan.new_jobs
    return {
        "tenants_to_create": len(plan.tenants_to_create),
        "channels_to_create": len(plan.new_channels),
        "channels_converted_before": len(plan.channels) - len(plan.new_channels),
        "rules_to_create": len(plan.new_rules),
        "rules_converted_before": len(plan.rules) - len(plan.new_rules),
        "jobs_to_copy": len(new_jobs),
        "attempts_to_copy": sum(j.copy.attempts for j in new_jobs if j.copy),
        "jobs_copied_before": len(plan.jobs) - len(new_jobs),
        "unfinished_jobs": len(plan.pending_jobs),
        "unconvertible": len(plan.unconvertible),
        "skipped": len(plan.skipped),
    }


def result_json(
    plan: Plan,
    applied: Applied | None,
    dropped: Dropped | None,
    refused: list[str] | None,
) -> dict[str, Any]:
    """The whole report of one run: plan, what was applied, what was dropped."""
    drop: dict[str, Any] | None = None
    if dropped is not None:
        drop = {"dropped": dropped.tables}
    elif refused is not None:
        drop = {"refused": refused}
    return {
        "plan": plan_json(plan),
        "applied": asdict(applied) if applied is not None else None,
        "drop": drop,
    }


def plan_text(plan: Plan, *, with_history: bool) -> list[str]:
    """The plan as lines for a terminal."""
    data = plan_json(plan)
    lines = [f"Old tables found: {', '.join(plan.legacy_tables) or 'none'}"]
    if plan.tenants_to_create:
        lines += ["", "Tenants to create, not in `tenants` yet:", f"  ({TENANT_NOTE})"]
        lines += [f"  {t['id']}  as {t['name']}" for t in data["tenants_to_create"]]
    for tenant, content in sorted(data["tenants"].items()):
        lines += ["", f"Tenant {tenant}"]
        kinds = sorted(
            set(content["channels"]) | set(content["rules"]) | set(content["history"])
        )
        for kind in kinds:
            lines.append(f"  {kind}")
            # Each channel's warnings right under it, not under the type's last one.
            for channel in content["channels"].get(kind, []):
                lines.append(_channel_line(channel, kind))
                lines += [f"      ! {w}" for w in channel.get("warnings", [])]
            lines += [_rule_line(r) for r in content["rules"].get(kind, [])]
            if kind in content["history"]:
                lines.append(_history_line(content["history"][kind], with_history))
    lines += _tail(data)
    if plan.new_channels:
        lines += ["", STOP_OLD_SYSTEM_NOTE]
    return lines


def _channel_line(channel: dict[str, Any], kind: str) -> str:
    state = "enabled" if channel["enabled"] else "disabled"
    line = (
        f"    channel {channel['action']:<6} {channel['name']!r} ({state})"
        f" {channel['channel_id']} from integration {channel['legacy_integration_id']}"
    )
    if "config" in channel:
        shown = _non_default(kind, channel["config"])
        line += f"\n      config {json.dumps(shown, ensure_ascii=False)}"
        secrets = ", ".join(channel["secrets_set"]) or "none"
        line += f"\n      secrets set: {secrets} (encrypted, not shown)"
    return line


def _rule_line(rule: dict[str, Any]) -> str:
    line = (
        f"    rule    {rule['action']:<6} {rule['name']!r}"
        f" {rule['rule_id']} from route {rule['legacy_route_id']}"
    )
    if rule["action"] == "create":
        matchers = [f"to {rule['channel_name']!r}", f"priority {rule['priority']}"]
        for name in ("site_ids", "device_prefixes", "alert_types", "deliver_on"):
            if rule[name]:
                matchers.append(f"{name} {','.join(rule[name])}")
        if rule["min_severity"]:
            matchers.append(f"min_severity {rule['min_severity']}")
        matchers.append("enabled" if rule["enabled"] else "disabled")
        line += f"\n      {'; '.join(matchers)}"
    return line


def _history_line(counts: dict[str, int], with_history: bool) -> str:
    when = (
        f"copied: {HISTORY_NOTE}"
        if with_history
        else "copied by --apply --with-history, or left behind with --skip-history"
    )
    line = (
        f"    history {counts['delivered']} delivered and {counts['dead']} dead jobs,"
        f" {counts['attempts']} attempts ({when})"
    )
    if counts["copied_before"]:
        line += f"; {counts['copied_before']} jobs copied before"
    return line


def _tail(data: dict[str, Any]) -> list[str]:
    lines = []
    if data["pending_jobs"]:
        lines += [
            "",
            "Unfinished jobs (reported, not copied; skip them to drop the old tables):",
        ]
        lines += [
            f"  {p['legacy_job_id']} {p['status']} tenant {p['tenant_id']}"
            for p in data["pending_jobs"]
        ]
    if data["unconvertible"]:
        lines += ["", "Cannot convert:"]
        for row in data["unconvertible"]:
            name = f" {row['name']!r}" if row["name"] else ""
            lines.append(
                f"  {row['table']} {row['legacy_id']}{name}"
                f" (tenant {row['tenant_id']}):"
            )
            lines += [f"    {p['field']}: {p['problem']}" for p in row["problems"]]
    left = data["history_left_behind"]
    if left is not None:
        lines += [
            "",
            f"History left behind (--skip-history): {left['jobs']} finished jobs "
            f"and {left['attempts']} attempts; {left['note']}.",
        ]
    if data["skipped"]:
        lines += ["", "Skipped:"]
        lines += [f"  {s['table']} {s['legacy_id']}" for s in data["skipped"]]
    if data["warnings"]:
        lines += ["", "Warnings:"] + [f"  {w}" for w in data["warnings"]]
    counts = data["summary"]
    lines += [
        "",
        "Summary: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()),
    ]
    return lines
