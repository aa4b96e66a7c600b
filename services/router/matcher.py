"""Which routing rules an alert event matches, indexed so tenants do not add cost.

DESIGN.md "Routing": a rule matches when every non-empty matcher matches
(``site_ids`` any of, ``device_prefixes`` prefix of the device id, ``alert_types``
any of, ``min_severity`` at least as severe, ``deliver_on`` event kinds); rules
run in ascending ``priority`` (rule id breaks ties so the order is stable) and a
matched rule with ``stop_on_match`` ends evaluation. Disabled rules, rules whose
channel is disabled, missing or of another tenant never match.

:class:`RuleIndex` answers that question in time that depends only on the rules
that could match: rules are grouped by tenant, and inside a tenant every rule is
filed under the event kinds and severities it accepts together with its most
selective matcher (one site, one alert type, one device prefix). An event looks
up a handful of buckets, checks the few candidates fully and merges them by
priority. :func:`reference_matches` is the plain filter the index is tested
against.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from switchboard.config_cache import ChannelRecord, RuleRecord
from switchboard.domain import ChannelType, EventKind, Severity

log = logging.getLogger(__name__)

ALL_KINDS = tuple(str(kind) for kind in EventKind)
SEVERITY_RANK = {str(severity): severity.rank for severity in Severity}
CHANNEL_TYPES = frozenset(str(channel_type) for channel_type in ChannelType)


@dataclass(frozen=True, slots=True)
class Match:
    """One rule that matched an event, with what the router needs to emit a job."""

    rule_id: str
    channel_id: str
    channel_type: str
    throttle_minutes: int
    stop_on_match: bool


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A routable rule with its matchers in the shapes matching needs."""

    order: int
    match: Match
    site_ids: frozenset[str]
    device_prefixes: tuple[str, ...]
    alert_types: frozenset[str]
    min_rank: int
    kinds: frozenset[str]

    def accepts(self, alert: Mapping[str, Any]) -> bool:
        """Whether every non-empty matcher of the rule matches ``alert``."""
        if self.kinds and alert["kind"] not in self.kinds:
            return False
        if SEVERITY_RANK.get(alert["severity"], -1) < self.min_rank:
            return False
        if self.alert_types and alert["alert_type"] not in self.alert_types:
            return False
        if self.site_ids and alert.get("site_id") not in self.site_ids:
            return False
        if self.device_prefixes:
            device_id = alert.get("device_id")
            if device_id is None or not device_id.startswith(self.device_prefixes):
                return False
        return True


def routable(rule: RuleRecord, channels: Mapping[str, ChannelRecord]) -> bool:
    """Whether a rule can match at all: enabled, its channel enabled and its own."""
    channel = channels.get(rule.channel_id)
    return (
        rule.enabled
        and channel is not None
        and channel.enabled
        and channel.tenant_id == rule.tenant_id
        and channel.channel_type in CHANNEL_TYPES
        and (rule.min_severity is None or rule.min_severity.upper() in SEVERITY_RANK)
    )


def rule_accepts(rule: RuleRecord, alert: Mapping[str, Any]) -> bool:
    """The plain, unindexed reading of DESIGN.md "Routing" for one rule."""
    if rule.tenant_id != alert["tenant_id"]:
        return False
    if rule.site_ids and alert.get("site_id") not in rule.site_ids:
        return False
    device_id = alert.get("device_id")
    if rule.device_prefixes and not (
        device_id is not None
        and any(device_id.startswith(p) for p in rule.device_prefixes)
    ):
        return False
    if rule.alert_types and alert["alert_type"] not in rule.alert_types:
        return False
    if rule.min_severity is not None and not Severity(alert["severity"]).at_least(
        Severity(rule.min_severity.upper())
    ):
        return False
    kinds = {kind.upper() for kind in rule.deliver_on}
    return not kinds or alert["kind"] in kinds


def reference_matches(
    rules: Iterable[RuleRecord],
    channels: Mapping[str, ChannelRecord],
    alert: Mapping[str, Any],
) -> list[str]:
    """Rule ids ``alert`` matches, in evaluation order, by filtering every rule."""
    matched = []
    ordered = sorted(rules, key=lambda rule: (rule.priority, rule.id))
    for rule in ordered:
        if routable(rule, channels) and rule_accepts(rule, alert):
            matched.append(rule.id)
            if rule.stop_on_match:
                break
    return matched


def compile_rule(rule: RuleRecord, channel: ChannelRecord, order: int) -> CompiledRule:
    """The matching form of a routable rule; ``order`` is its evaluation position."""
    min_rank = SEVERITY_RANK[rule.min_severity.upper()] if rule.min_severity else -1
    return CompiledRule(
        order=order,
        match=Match(
            rule_id=rule.id,
            channel_id=rule.channel_id,
            channel_type=channel.channel_type,
            throttle_minutes=rule.throttle_minutes,
            stop_on_match=rule.stop_on_match,
        ),
        site_ids=frozenset(rule.site_ids),
        device_prefixes=tuple(rule.device_prefixes),
        alert_types=frozenset(rule.alert_types),
        min_rank=min_rank,
        kinds=frozenset(kind.upper() for kind in rule.deliver_on),
    )


# Bucket keys: (kind, severity, dimension, value). The dimension names which
# matcher the rule is filed under; "*" files rules without any of the three.
BucketKey = tuple[str, str, str, str]
SITE, ALERT_TYPE, DEVICE_PREFIX, ANY = "site", "type", "device", "*"


def _filing(rule: CompiledRule) -> tuple[str, Iterable[str]]:
    """The matcher a rule is filed under: the one with the fewest values.

    Fewer values means fewer index entries and, for the same kind of matcher,
    fewer events reaching the rule; sites come first on ties because a site
    usually narrows more than an alert type, and prefixes cost one lookup per
    character of the device id.
    """
    options = [
        (len(rule.site_ids), 0, SITE, rule.site_ids),
        (len(rule.alert_types), 1, ALERT_TYPE, rule.alert_types),
        (len(rule.device_prefixes), 2, DEVICE_PREFIX, rule.device_prefixes),
    ]
    present = [option for option in options if option[0] > 0]
    if not present:
        return ANY, ("",)
    _count, _tie, dimension, values = min(present, key=lambda option: option[:2])
    return dimension, set(values)


class TenantIndex:
    """The rules of one tenant, filed in buckets by kind, severity and one matcher."""

    def __init__(self, rules: list[CompiledRule]) -> None:
        """File ``rules`` (already numbered in evaluation order)."""
        buckets: dict[BucketKey, list[CompiledRule]] = {}
        self.prefix_lengths: set[int] = set()
        for rule in rules:
            dimension, values = _filing(rule)
            if dimension == DEVICE_PREFIX:
                self.prefix_lengths.update(len(value) for value in values)
            kinds = rule.kinds or ALL_KINDS
            severities = [
                s for s, rank in SEVERITY_RANK.items() if rank >= rule.min_rank
            ]
            for kind in kinds:
                for severity in severities:
                    for value in values:
                        key = (kind, severity, dimension, value)
                        buckets.setdefault(key, []).append(rule)
        self.buckets = {key: tuple(found) for key, found in buckets.items()}
        self.rule_count = len(rules)

    def candidates(self, alert: Mapping[str, Any]) -> list[tuple[CompiledRule, ...]]:
        """The buckets an event can draw matching rules from."""
        kind, severity = alert["kind"], alert["severity"]
        keys = [
            (kind, severity, ANY, ""),
            (kind, severity, ALERT_TYPE, alert["alert_type"]),
        ]
        site_id = alert.get("site_id")
        if site_id is not None:
            keys.append((kind, severity, SITE, site_id))
        device_id = alert.get("device_id")
        if device_id is not None:
            for length in self.prefix_lengths:
                if length <= len(device_id):
                    keys.append((kind, severity, DEVICE_PREFIX, device_id[:length]))
        found = [self.buckets.get(key) for key in keys]
        return [bucket for bucket in found if bucket]

    def matches(self, alert: Mapping[str, Any]) -> list[Match]:
        """The matches of ``alert`` in evaluation order, honouring stop_on_match."""
        buckets = self.candidates(alert)
        if not buckets:
            return []
        if len(buckets) == 1:
            ordered: Iterable[CompiledRule] = buckets[0]
        else:
            # A rule filed under two prefixes of the same device id shows up twice.
            unique = {rule.order: rule for bucket in buckets for rule in bucket}
            ordered = [unique[order] for order in sorted(unique)]
        matched = []
        for rule in ordered:
            if rule.accepts(alert):
                matched.append(rule.match)
                if rule.match.stop_on_match:
                    break
        return matched


class RuleIndex:
    """Every tenant's routable rules, rebuilt per tenant when the config changes."""

    def __init__(self) -> None:
        """An empty index; call :meth:`update` with a config snapshot."""
        self.version = -1
        self._tenants: dict[str, TenantIndex] = {}
        self._inputs: dict[str, tuple[tuple[RuleRecord, ChannelRecord], ...]] = {}

    @property
    def tenant_count(self) -> int:
        """Tenants with at least one routable rule."""
        return len(self._tenants)

    @property
    def rule_count(self) -> int:
        """Routable rules over all tenants."""
        return sum(tenant.rule_count for tenant in self._tenants.values())

    def update(
        self,
        version: int,
        channels: Mapping[str, ChannelRecord],
        rules: Mapping[str, RuleRecord],
    ) -> int:
        """Take a config snapshot; rebuild only tenants whose rules or channels changed.

        Returns the number of tenants rebuilt.
        """
        inputs = _routable_by_tenant(channels, rules)
        rebuilt = 0
        tenants: dict[str, TenantIndex] = {}
        for tenant_id, pairs in inputs.items():
            previous = self._inputs.get(tenant_id)
            if previous is not None and _same(previous, pairs):
                tenants[tenant_id] = self._tenants[tenant_id]
                continue
            tenants[tenant_id] = _build_tenant(pairs)
            rebuilt += 1
        rebuilt += len(set(self._tenants) - set(tenants))
        self._tenants, self._inputs, self.version = tenants, inputs, version
        return rebuilt

    def matches(self, alert: Mapping[str, Any]) -> list[Match]:
        """The rules ``alert`` matches, in evaluation order."""
        tenant = self._tenants.get(alert["tenant_id"])
        return tenant.matches(alert) if tenant is not None else []


def _routable_by_tenant(
    channels: Mapping[str, ChannelRecord], rules: Mapping[str, RuleRecord]
) -> dict[str, tuple[tuple[RuleRecord, ChannelRecord], ...]]:
    grouped: dict[str, list[tuple[RuleRecord, ChannelRecord]]] = {}
    skipped = 0
    for rule in rules.values():
        if not routable(rule, channels):
            skipped += rule.enabled
            continue
        grouped.setdefault(rule.tenant_id, []).append((rule, channels[rule.channel_id]))
    if skipped:
        log.debug("enabled rules without a usable channel", extra={"rules": skipped})
    return {
        tenant_id: tuple(sorted(pairs, key=lambda pair: (pair[0].priority, pair[0].id)))
        for tenant_id, pairs in grouped.items()
    }


def _same(
    previous: tuple[tuple[RuleRecord, ChannelRecord], ...],
    current: tuple[tuple[RuleRecord, ChannelRecord], ...],
) -> bool:
    # The cache replaces a record object whenever its event is applied, so
    # identity tells "unchanged" without comparing every field.
    return len(previous) == len(current) and all(
        a[0] is b[0] and a[1] is b[1] for a, b in zip(previous, current, strict=True)
    )


def _build_tenant(pairs: tuple[tuple[RuleRecord, ChannelRecord], ...]) -> TenantIndex:
    compiled = [
        compile_rule(rule, channel, order)
        for order, (rule, channel) in enumerate(pairs)
    ]
    return TenantIndex(compiled)
