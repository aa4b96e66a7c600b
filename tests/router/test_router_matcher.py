"""The rule matcher: a table for every routing field; the index vs a plain filter."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.matcher import RuleIndex, reference_matches
from switchboard.config_cache import ChannelRecord, RuleRecord

TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"


def channel(
    channel_id: str = "ch-1", tenant_id: str = TENANT, **fields: Any
) -> ChannelRecord:
    """A channel record with defaults."""
    values: dict[str, Any] = {
        "id": channel_id,
        "tenant_id": tenant_id,
        "name": channel_id,
        "channel_type": "webhook",
        "enabled": True,
        "config_json": "{}",
        "secrets_encrypted": None,
    }
    values.update(fields)
    return ChannelRecord(**values)


def rule(rule_id: str = "rule-1", **fields: Any) -> RuleRecord:
    """A rule record with defaults: tenant-a, channel ch-1, no matchers."""
    values: dict[str, Any] = {
        "id": rule_id,
        "tenant_id": TENANT,
        "channel_id": "ch-1",
        "name": rule_id,
        "priority": 10,
    }
    values.update(fields)
    return RuleRecord(**values)


def alert(**fields: Any) -> dict[str, Any]:
    """A decoded AlertEvent with defaults."""
    values: dict[str, Any] = {
        "event_id": "e-1",
        "tenant_id": TENANT,
        "alert_id": "a-1",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": "site-1",
        "device_id": "rtr-paris-01",
    }
    values.update(fields)
    return values


def indexed(
    rules: list[RuleRecord], channels: list[ChannelRecord], event: dict
) -> list[str]:
    """Rule ids the index matches, in order."""
    index = RuleIndex()
    index.update(1, {c.id: c for c in channels}, {r.id: r for r in rules})
    return [match.rule_id for match in index.matches(event)]


# (case, rule fields, alert fields, matches). One rule on one enabled channel.
FIELD_CASES = [
    ("no matchers match everything", {}, {}, True),
    ("site_ids: listed site", {"site_ids": ("site-1", "site-2")}, {}, True),
    ("site_ids: other site", {"site_ids": ("site-2",)}, {}, False),
    (
        "site_ids: event without site",
        {"site_ids": ("site-1",)},
        {"site_id": None},
        False,
    ),
    ("device_prefixes: prefix", {"device_prefixes": ("rtr-",)}, {}, True),
    ("device_prefixes: any of", {"device_prefixes": ("sw-", "rtr-par")}, {}, True),
    ("device_prefixes: whole id", {"device_prefixes": ("rtr-paris-01",)}, {}, True),
    (
        "device_prefixes: longer than id",
        {"device_prefixes": ("rtr-paris-012",)},
        {},
        False,
    ),
    ("device_prefixes: not a prefix", {"device_prefixes": ("paris",)}, {}, False),
    ("device_prefixes: case matters", {"device_prefixes": ("RTR-",)}, {}, False),
    (
        "device_prefixes: no device",
        {"device_prefixes": ("rtr-",)},
        {"device_id": None},
        False,
    ),
    ("alert_types: listed", {"alert_types": ("cpu", "link_down")}, {}, True),
    ("alert_types: not listed", {"alert_types": ("cpu",)}, {}, False),
    ("min_severity: equal", {"min_severity": "HIGH"}, {}, True),
    ("min_severity: more severe", {"min_severity": "MEDIUM"}, {}, True),
    ("min_severity: less severe", {"min_severity": "CRITICAL"}, {}, False),
    (
        "min_severity: INFO takes all",
        {"min_severity": "INFO"},
        {"severity": "INFO"},
        True,
    ),
    (
        "min_severity: lower case",
        {"min_severity": "critical"},
        {"severity": "CRITICAL"},
        True,
    ),
    ("deliver_on: listed kind", {"deliver_on": ("OPEN", "CLOSED")}, {}, True),
    ("deliver_on: other kind", {"deliver_on": ("CLOSED",)}, {}, False),
    (
        "deliver_on: acknowledged",
        {"deliver_on": ("ACKNOWLEDGED",)},
        {"kind": "ACKNOWLEDGED"},
        True,
    ),
    ("disabled rule", {"enabled": False}, {}, False),
    ("rule of another tenant", {"tenant_id": OTHER_TENANT}, {}, False),
    ("event of another tenant", {}, {"tenant_id": OTHER_TENANT}, False),
    ("unknown channel", {"channel_id": "ch-missing"}, {}, False),
    (
        "every matcher set, all match",
        {
            "site_ids": ("site-1",),
            "device_prefixes": ("rtr-",),
            "alert_types": ("link_down",),
            "min_severity": "HIGH",
            "deliver_on": ("OPEN",),
        },
        {},
        True,
    ),
    (
        "every matcher set, one fails",
        {
            "site_ids": ("site-1",),
            "device_prefixes": ("rtr-",),
            "alert_types": ("link_down",),
            "min_severity": "HIGH",
            "deliver_on": ("CLOSED",),
        },
        {},
        False,
    ),
]


@pytest.mark.parametrize(
    ("rule_fields", "alert_fields", "expected"),
    [case[1:] for case in FIELD_CASES],
    ids=[case[0] for case in FIELD_CASES],
)
def test_each_field(rule_fields: dict, alert_fields: dict, expected: bool) -> None:
    """Index and reference agree with the table on every matcher."""
    rules, channels, event = [rule(**rule_fields)], [channel()], alert(**alert_fields)

    expected_ids = ["rule-1"] if expected else []
    assert indexed(rules, channels, event) == expected_ids
    assert reference_matches(rules, {c.id: c for c in channels}, event) == expected_ids


def test_disabled_channel_does_not_match() -> None:
    """A rule whose channel is disabled matches nothing."""
    assert indexed([rule()], [channel(enabled=False)], alert()) == []


def test_channel_of_another_tenant_does_not_match() -> None:
    """A rule pointing at another tenant's channel never routes there."""
    assert indexed([rule()], [channel(tenant_id=OTHER_TENANT)], alert()) == []


def test_rules_run_in_priority_order() -> None:
    """Matches come back in ascending priority, then rule id."""
    rules = [
        rule("rule-c", priority=5),
        rule("rule-a", priority=20),
        rule("rule-b", priority=5),
        rule("rule-d", priority=-1, site_ids=("site-1",)),
    ]

    assert indexed(rules, [channel()], alert()) == [
        "rule-d",
        "rule-b",
        "rule-c",
        "rule-a",
    ]


def test_stop_on_match_ends_evaluation() -> None:
    """A matched stop_on_match rule ends evaluation; an unmatched one does not."""
    rules = [
        rule("rule-1", priority=1, stop_on_match=True, alert_types=("cpu",)),
        rule("rule-2", priority=2, stop_on_match=True),
        rule("rule-3", priority=3),
    ]

    assert indexed(rules, [channel()], alert()) == ["rule-2"]
    assert indexed(rules, [channel()], alert(alert_type="cpu")) == ["rule-1"]


def test_stop_on_match_of_a_disabled_rule_does_not_stop() -> None:
    """A disabled rule does not match, so its stop_on_match has no effect."""
    rules = [
        rule("rule-1", priority=1, stop_on_match=True, enabled=False),
        rule("rule-2"),
    ]

    assert indexed(rules, [channel()], alert()) == ["rule-2"]


def test_each_match_carries_its_channel() -> None:
    """Matches name the rule's channel and that channel's type."""
    channels = [channel("ch-1"), channel("ch-2", channel_type="slack")]
    rules = [rule("rule-1", priority=1), rule("rule-2", channel_id="ch-2", priority=2)]
    index = RuleIndex()
    index.update(1, {c.id: c for c in channels}, {r.id: r for r in rules})

    matches = index.matches(alert())

    assert [(m.channel_id, m.channel_type) for m in matches] == [
        ("ch-1", "webhook"),
        ("ch-2", "slack"),
    ]


def test_update_rebuilds_only_changed_tenants() -> None:
    """A change to one tenant's rules leaves the other tenants' indexes alone."""
    channels = {"ch-1": channel(), "ch-2": channel("ch-2", tenant_id=OTHER_TENANT)}
    rules = {
        "rule-1": rule(),
        "rule-2": rule("rule-2", tenant_id=OTHER_TENANT, channel_id="ch-2"),
    }
    index = RuleIndex()
    assert index.update(1, channels, rules) == 2

    rules["rule-1"] = dataclasses.replace(rules["rule-1"], alert_types=("cpu",))

    assert index.update(2, channels, rules) == 1
    assert index.matches(alert()) == []
    assert [m.rule_id for m in index.matches(alert(tenant_id=OTHER_TENANT))] == [
        "rule-2"
    ]


# Small pools so random rules and events collide often.
SITES = ["s1", "s2", "s3"]
TYPES = ["cpu", "disk", "link"]
DEVICES = ["", "r", "rt", "rtr1", "rtr2", "sw1"]
KINDS = ["OPEN", "ACKNOWLEDGED", "CLOSED"]
SEVERITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
TENANTS = [TENANT, OTHER_TENANT]
CHANNEL_IDS = ["ch-1", "ch-2", "ch-3", "ch-missing"]


def subsets(pool: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    """Small tuples drawn from a pool, often empty."""
    return st.lists(st.sampled_from(pool), max_size=3).map(tuple)


rule_strategy = st.builds(
    RuleRecord,
    id=st.text("abcdef", min_size=1, max_size=3),
    tenant_id=st.sampled_from(TENANTS),
    channel_id=st.sampled_from(CHANNEL_IDS),
    name=st.just("r"),
    priority=st.integers(-2, 3),
    site_ids=subsets(SITES),
    device_prefixes=subsets(DEVICES),
    alert_types=subsets(TYPES),
    min_severity=st.none() | st.sampled_from(SEVERITIES),
    deliver_on=subsets(KINDS),
    throttle_minutes=st.integers(0, 5),
    stop_on_match=st.booleans(),
    enabled=st.booleans(),
)

channel_strategy = st.builds(
    channel,
    channel_id=st.sampled_from(CHANNEL_IDS[:3]),
    tenant_id=st.sampled_from(TENANTS),
    enabled=st.booleans(),
    channel_type=st.sampled_from(["webhook", "slack", "email"]),
)

alert_strategy = st.builds(
    alert,
    tenant_id=st.sampled_from(TENANTS),
    kind=st.sampled_from(KINDS),
    severity=st.sampled_from(SEVERITIES),
    alert_type=st.sampled_from(TYPES + ["other"]),
    site_id=st.none() | st.sampled_from(SITES + ["s9"]),
    device_id=st.none() | st.sampled_from(DEVICES + ["rtr10", "x"]),
)


def by_id(records: list) -> dict:
    """Records keyed by id; later ones win, as in the config cache."""
    return {record.id: record for record in records}


@settings(max_examples=400, deadline=None)
@given(
    rules=st.lists(rule_strategy, max_size=14),
    channels=st.lists(channel_strategy, max_size=4),
    events=st.lists(alert_strategy, min_size=1, max_size=6),
)
def test_index_agrees_with_reference_filter(
    rules: list[RuleRecord], channels: list[ChannelRecord], events: list[dict]
) -> None:
    """For random rule sets and events the index matches exactly what filtering does."""
    rules_by_id, channels_by_id = by_id(rules), by_id(channels)
    index = RuleIndex()
    index.update(1, channels_by_id, rules_by_id)

    for event in events:
        expected = reference_matches(rules_by_id.values(), channels_by_id, event)
        assert [m.rule_id for m in index.matches(event)] == expected


@settings(max_examples=150, deadline=None)
@given(
    before=st.lists(rule_strategy, max_size=10),
    after=st.lists(rule_strategy, max_size=10),
    channels_before=st.lists(channel_strategy, max_size=3),
    channels_after=st.lists(channel_strategy, max_size=3),
    events=st.lists(alert_strategy, min_size=1, max_size=5),
)
def test_updated_index_agrees_with_reference_filter(
    before: list[RuleRecord],
    after: list[RuleRecord],
    channels_before: list[ChannelRecord],
    channels_after: list[ChannelRecord],
    events: list[dict],
) -> None:
    """An index updated in place matches like one built from the new config."""
    rules_before, rules_after = by_id(before), by_id(before + after)
    old_channels = by_id(channels_before)
    new_channels = by_id(channels_before + channels_after)
    index = RuleIndex()
    index.update(1, old_channels, rules_before)

    index.update(2, new_channels, rules_after)

    for event in events:
        expected = reference_matches(rules_after.values(), new_channels, event)
        assert [m.rule_id for m in index.matches(event)] == expected
