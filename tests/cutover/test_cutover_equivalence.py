"""Plan, apply, apply again and drop over awkward old rows; then prove routing equal.

The proof routes a grid of alert events two ways: with a plain reference of the
old routes' semantics over the old rows (kept by the fixture), and with the
router's own matcher (``services.router.matcher.RuleIndex``) over the channels
and rules as the outbox publishes them to ``notify.config``. Every event must
reach exactly the same integrations both ways, except the integrations the
operator skipped explicitly.
"""

from __future__ import annotations

import base64
import json
import uuid

import psycopg
from cutover_fixture import SECRETS, Legacy
from cutover_reference import SKIPPED, events, old_selection, rows

from services.cutover.legacy import LEGACY_TABLES, present_tables
from services.cutover.report import plan_text, result_json
from services.cutover.run import run_cutover
from services.router.matcher import RuleIndex
from switchboard.codec import Codec
from switchboard.config_cache import ChannelRecord, RuleRecord
from switchboard.secrets import SecretBox
from switchboard.settings import Settings


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


SWITCHBOARD_TABLES = (
    "tenants",
    "notification_channels",
    "notification_routing_rules",
    "notification_jobs",
    "notification_log",
    "config_outbox",
    "job_outbox",
    "legacy_cutover_items",
    "legacy_cutover_runs",
)


def fingerprint(url: str) -> dict[str, str]:
    """A digest of every row of every table the cutover writes."""
    digests = {}
    with psycopg.connect(url) as conn:
        for table in SWITCHBOARD_TABLES:
            row = conn.execute(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f" FROM {table} t"
            ).fetchone()
            assert row is not None
            digests[table] = row[0]
    return digests


def test_plan_changes_nothing_and_reports_every_awkward_row(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    before = fingerprint(legacy.url)

    result = run_cutover(cutover_settings)

    assert fingerprint(legacy.url) == before
    assert count(legacy.url, "notification_channels") == 0
    plan = result.plan
    assert plan.tenants_to_create == [uuid.UUID(legacy.new_tenant)]
    assert {str(c.legacy_id) for c in plan.new_channels} == {
        legacy.id(r)
        for r in (
            "webhook",
            "snmp_v2c",
            "snmp_v3",
            "email",
            "mqtt_disabled",
            "lab_mqtt",
            "plain_hook",
        )
    }
    refused = {u.legacy_id: dict(u.problems) for u in plan.unconvertible}
    assert "unknown integration type 'sms'" in refused[legacy.id("sms")]["type"]
    assert "valid URL" in refused[legacy.id("bad_url")]["config.url"]
    assert refused[legacy.id("no_from")]["config.from_address"] == "Field required"
    assert "not a public address" in refused[legacy.id("private")]["config.url"]
    assert "missing integration" in refused[legacy.id("r_deleted")]["integration_id"]
    assert "cannot be converted" in refused[legacy.id("r_sms")]["integration_id"]
    assert "min_severity" in refused[legacy.id("r_bad_severity")]
    assert "is not converted" in refused[legacy.id("j_sms")]["integration_id"]
    assert {str(p.legacy_id) for p in plan.pending_jobs} == {
        legacy.id("j_pending"),
        legacy.id("j_processing"),
    }


def test_reports_never_show_a_secret(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    result = run_cutover(cutover_settings)

    text = "\n".join(plan_text(result.plan, with_history=True))
    report = json.dumps(result_json(result.plan, None, None, None), ensure_ascii=False)

    for secret in SECRETS:
        assert secret not in text
        assert secret not in report
    assert "Лаборатория MQTT" in text and "Ops webhook — Zürich ✓" in report
    assert "token=***" in text
    assert "header Authorization moved to the encrypted secret headers" in text
    assert "secrets set: secret_headers, signing_secret" in text


def test_apply_converts_once_and_drop_needs_every_row_accounted_for(
    legacy: Legacy, cutover_settings: Settings, codec: Codec
) -> None:
    first = run_cutover(cutover_settings, apply=True, with_history=True)
    assert first.applied is not None
    assert (first.applied.tenants, first.applied.channels, first.applied.rules) == (
        1,
        7,
        9,
    )
    assert (first.applied.jobs, first.applied.attempts) == (3, 6)
    outbox_rows = count(legacy.url, "config_outbox")
    assert outbox_rows == 16

    before = fingerprint(legacy.url)
    again = run_cutover(cutover_settings, apply=True, with_history=True)
    assert again.applied is not None and again.applied.nothing
    assert fingerprint(legacy.url) == before
    assert count(legacy.url, "config_outbox") == outbox_rows
    assert count(legacy.url, "notification_channels") == 7
    assert count(legacy.url, "notification_routing_rules") == 9
    # The history waits in the job outbox for the relay; only the recorder
    # writes the job tables (test_cutover_history shows the whole way).
    assert count(legacy.url, "job_outbox") == 3 + 6
    assert count(legacy.url, "notification_jobs") == 0

    refused = run_cutover(cutover_settings, drop=True)
    assert refused.refused is not None and refused.dropped is None
    assert any(legacy.id("sms") in reason for reason in refused.refused)
    assert any(
        "unfinished" in reason and legacy.id("j_pending") in reason
        for reason in refused.refused
    )
    with psycopg.connect(legacy.url) as conn:
        assert present_tables(conn) == LEGACY_TABLES

    skip = [legacy.id(role) for role in SKIPPED]
    dropped = run_cutover(cutover_settings, drop=True, skip=skip)
    assert dropped.refused is None and dropped.dropped is not None
    assert dropped.dropped.tables == {
        "delivery_attempts": 5,
        "delivery_jobs": 6,
        "integration_routes": 13,
        "integrations": 11,
    }
    with psycopg.connect(legacy.url) as conn:
        assert present_tables(conn) == ()

    assert_routing_equivalent(legacy, codec)


def test_converted_rows_keep_their_values_and_encrypted_secrets(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    run_cutover(cutover_settings, apply=True, with_history=True)

    channels = {
        str(row["legacy_integration_id"]): row
        for row in rows(legacy.url, "SELECT * FROM notification_channels")
    }
    box = SecretBox.from_settings(cutover_settings)
    webhook = channels[legacy.id("webhook")]
    assert webhook["name"] == "Ops webhook — Zürich ✓"
    assert webhook["config"]["headers"] == {"X-Team": "noc"}
    secrets = box.decrypt(webhook["secrets_encrypted"])
    assert secrets["secret_headers"] == {"Authorization": "Bearer header-token-77aa"}
    secret = secrets["signing_secret"]
    assert (
        secret
        == "whsec_" + base64.b64encode(b"old-hmac-secret-0123456789abcdef").decode()
    )
    assert "old-hmac-secret" not in json.dumps(webhook["config"])
    assert box.decrypt(channels[legacy.id("snmp_v3")]["secrets_encrypted"]) == {
        "auth_key": "authkey-9f8e7d6c",
        "priv_key": "privkey-1a2b3c4d",
    }
    assert channels[legacy.id("snmp_v3")]["config"]["auth_protocol"] == "SHA"
    assert channels[legacy.id("mqtt_disabled")]["enabled"] is False
    assert channels[legacy.id("email")]["config"]["security"] == "starttls"
    lab = channels[legacy.id("lab_mqtt")]
    assert lab["tenant_id"] == uuid.UUID(legacy.new_tenant)
    assert lab["config"]["topic_template"] == "{% raw %}lab/{{site}}/alerts{% endraw %}"


def test_a_channel_deleted_after_the_cutover_is_not_brought_back(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    run_cutover(cutover_settings, apply=True)
    with psycopg.connect(legacy.url) as conn:
        conn.execute(
            "DELETE FROM notification_channels WHERE legacy_integration_id = %s",
            (legacy.id("plain_hook"),),
        )

    again = run_cutover(cutover_settings, apply=True)

    assert again.applied is not None and again.applied.nothing
    assert count(legacy.url, "notification_channels") == 6


def test_drop_is_refused_before_any_apply(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    everything = [legacy.id(role) for role in legacy.ids]

    result = run_cutover(cutover_settings, drop=True, skip=everything)

    assert result.refused == ["no successful `switchboard cutover --apply` is recorded"]
    with psycopg.connect(legacy.url) as conn:
        assert present_tables(conn) == LEGACY_TABLES


def published_config(url: str, codec: Codec) -> tuple[dict, dict]:
    """Channels and rules as a notify.config reader ends up with them."""
    channels: dict[str, ChannelRecord] = {}
    rules: dict[str, RuleRecord] = {}
    for row in rows(url, "SELECT payload FROM config_outbox ORDER BY id"):
        event = codec.decode("ConfigEvent", row["payload"])
        if event["channel"] is not None:
            channels[event["channel"]["id"]] = ChannelRecord(**event["channel"])
        if event["rule"] is not None:
            value = dict(event["rule"])
            for name in ("site_ids", "device_prefixes", "alert_types", "deliver_on"):
                value[name] = tuple(value[name])
            rules[value["id"]] = RuleRecord(**value)
    return channels, rules


def assert_routing_equivalent(legacy: Legacy, codec: Codec) -> None:
    channels, rules = published_config(legacy.url, codec)
    index = RuleIndex()
    index.update(1, channels, rules)
    origin = {
        str(row["id"]): str(row["legacy_integration_id"])
        for row in rows(
            legacy.url, "SELECT id, legacy_integration_id FROM notification_channels"
        )
    }
    skipped = {legacy.id(role) for role in SKIPPED}
    reached: set[str] = set()
    for event in events(legacy):
        new = {origin[match.channel_id] for match in index.matches(event)}
        assert new == old_selection(legacy, event, skipped), event
        reached |= new
    # Every enabled converted integration with an enabled route is reachable,
    # so the comparison above was not vacuous.
    assert reached == {
        legacy.id(r)
        for r in ("webhook", "snmp_v2c", "snmp_v3", "email", "lab_mqtt", "plain_hook")
    }


def test_a_disabled_integration_is_converted_disabled_and_reaches_nothing(
    legacy: Legacy, cutover_settings: Settings, codec: Codec
) -> None:
    run_cutover(cutover_settings, apply=True)
    channels, rules = published_config(legacy.url, codec)

    disabled = [c for c in channels.values() if not c.enabled]

    assert [c.name for c in disabled] == ["Factory MQTT"]
    index = RuleIndex()
    index.update(1, channels, rules)
    assert all(
        match.channel_id != disabled[0].id
        for event in events(legacy)
        for match in index.matches(event)
    )


def test_history_can_be_carried_over_by_a_later_apply(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    first = run_cutover(cutover_settings, apply=True)
    assert first.applied is not None and first.applied.jobs == 0

    later = run_cutover(cutover_settings, apply=True, with_history=True)

    assert later.applied is not None
    assert (later.applied.channels, later.applied.rules, later.applied.jobs) == (
        0,
        0,
        3,
    )
    assert (later.applied.attempts, later.applied.job_events) == (6, 9)
    assert count(legacy.url, "job_outbox") == 9


def test_the_plan_shows_the_ids_the_apply_creates(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    planned = run_cutover(cutover_settings).plan
    v3 = next(c for c in planned.channels if c.name == "Secure traps")
    assert any("engine id 80" in warning for warning in v3.warnings)
    # The warning is printed under its own channel, not the type's last one.
    text = plan_text(planned, with_history=False)
    v3_line = next(n for n, line in enumerate(text) if "'Secure traps'" in line)
    assert "engine id 80" in text[v3_line + 1]

    run_cutover(cutover_settings, apply=True)

    channel_ids = {
        row["id"] for row in rows(legacy.url, "SELECT id FROM notification_channels")
    }
    rule_ids = {
        row["id"]
        for row in rows(legacy.url, "SELECT id FROM notification_routing_rules")
    }
    assert channel_ids == {c.channel_id for c in planned.new_channels}
    assert rule_ids == {r.rule_id for r in planned.new_rules}


def test_attempts_of_no_job_must_be_skipped_before_the_drop(
    legacy: Legacy, cutover_settings: Settings
) -> None:
    # An old schema without the foreign key can hold attempts of no job.
    with psycopg.connect(legacy.url) as conn:
        conn.execute(
            "ALTER TABLE delivery_attempts"
            " DROP CONSTRAINT delivery_attempts_job_id_fkey"
        )
        row = conn.execute(
            "INSERT INTO delivery_attempts (job_id, attempt_no, ok, started_at)"
            " VALUES (gen_random_uuid(), 1, false, now()) RETURNING id"
        ).fetchone()
    assert row is not None
    orphan = str(row[0])
    skip = [legacy.id(role) for role in SKIPPED]

    planned = run_cutover(cutover_settings, apply=True, with_history=True, skip=skip)
    assert any(orphan in warning for warning in planned.plan.warnings)
    refused = run_cutover(cutover_settings, drop=True, skip=skip)
    assert refused.refused is not None
    assert any("belong to no job" in r and orphan in r for r in refused.refused)

    dropped = run_cutover(cutover_settings, drop=True, skip=[*skip, orphan])
    assert dropped.dropped is not None
    assert ("delivery_attempts", orphan) in dropped.plan.skipped
    assert not any("match no old row" in w for w in dropped.plan.warnings)
