"""The Avro single-object codec: round trips, schema evolution and clear errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.codec import (
    SINGLE_OBJECT_MARKER,
    Codec,
    CodecError,
    InvalidRecordError,
    MalformedMessageError,
    UnknownSchemaError,
    load_schema_versions,
)
from switchboard.domain import JobState
from switchboard.jobs import job_event, new_command

NOW = datetime(2026, 12, 3, 12, 0, 0, 123000, tzinfo=UTC)


def make_alert(**overrides: object) -> dict:
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "tenant-1",
        "alert_id": "alert-1",
        "kind": "OPEN",
        "severity": "CRITICAL",
        "alert_type": "link_down",
        "site_id": "site-7",
        "device_id": "rtr-core-01",
        "summary": "Uplink down on rtr-core-01 ⚠️",
        "details": "Interface ge-0/0/1 lost carrier",
        "labels": {"region": "eu-west"},
        "occurred_at": NOW,
        "source": "monitor",
    }
    alert.update(overrides)
    return alert


def channel_record() -> dict:
    return {
        "id": "ch-1",
        "tenant_id": "tenant-1",
        "name": "Ops webhook",
        "channel_type": "webhook",
        "enabled": True,
        "config_json": json.dumps({"url": "https://example.com/hook"}),
        "secrets_encrypted": "gAAAA-token",
    }


def rule_record() -> dict:
    return {
        "id": "rule-1",
        "tenant_id": "tenant-1",
        "channel_id": "ch-1",
        "name": "Critical core",
        "priority": 10,
        "site_ids": ["site-7"],
        "device_prefixes": ["rtr-"],
        "alert_types": [],
        "min_severity": "HIGH",
        "deliver_on": ["OPEN", "CLOSED"],
        "throttle_minutes": 5,
        "stop_on_match": True,
        "enabled": True,
    }


def sample_records() -> dict[str, dict]:
    command = new_command(make_alert(), "ch-1", "webhook", "rule-1", created_at=NOW)
    return {
        "AlertEvent": make_alert(),
        "DeliveryCommand": command,
        "JobEvent": job_event(command, JobState.QUEUED, 1, occurred_at=NOW),
        "ChannelConfig": channel_record(),
        "RoutingRule": rule_record(),
        "ConfigEvent": {
            "outbox_id": 42,
            "changed_at": NOW,
            "channel": channel_record(),
            "rule": None,
        },
    }


@pytest.mark.parametrize("record", sorted(sample_records()))
def test_every_schema_round_trips(codec: Codec, record: str) -> None:
    value = sample_records()[record]

    data = codec.encode(record, value)

    assert data[:2] == SINGLE_OBJECT_MARKER
    assert data[2:10] == codec.schema(record).fingerprint
    assert codec.decode(record, data) == value


def test_every_schema_file_parses_with_a_distinct_fingerprint() -> None:
    versions = load_schema_versions()

    fingerprints = [v.fingerprint for v in versions]

    assert len(versions) >= 7
    assert len(set(fingerprints)) == len(fingerprints)


def test_older_writer_read_by_newer_reader_gets_the_default(codec: Codec) -> None:
    old = Codec(reader_versions={"AlertEvent": 1})
    alert = make_alert()
    del alert["labels"]

    data = old.encode("AlertEvent", alert)
    decoded = codec.decode("AlertEvent", data)

    assert codec.writer_schema(data).version == 1
    assert decoded == {**alert, "labels": {}}


def test_newer_writer_read_by_older_reader_drops_the_new_field(codec: Codec) -> None:
    old = Codec(reader_versions={"AlertEvent": 1})
    alert = make_alert(labels={"team": "noc"})

    decoded = old.decode("AlertEvent", codec.encode("AlertEvent", alert))

    assert "labels" not in decoded
    assert decoded["summary"] == alert["summary"]


def test_unknown_fingerprint_raises_unknown_schema(codec: Codec) -> None:
    data = codec.encode("AlertEvent", make_alert())
    forged = data[:2] + b"\x00" * 8 + data[10:]

    with pytest.raises(UnknownSchemaError, match="unknown schema fingerprint"):
        codec.decode("AlertEvent", forged)


def test_truncated_body_raises_malformed(codec: Codec) -> None:
    data = codec.encode("AlertEvent", make_alert())

    with pytest.raises(MalformedMessageError, match="does not decode"):
        codec.decode("AlertEvent", data[: len(data) // 2])


def test_trailing_bytes_raise_malformed(codec: Codec) -> None:
    data = codec.encode("AlertEvent", make_alert())

    with pytest.raises(MalformedMessageError, match="trailing bytes"):
        codec.decode("AlertEvent", data + b"\x00\x01")


def test_plain_json_is_not_single_object_encoded(codec: Codec) -> None:
    with pytest.raises(UnknownSchemaError, match="not an Avro single-object"):
        codec.decode("AlertEvent", b'{"alert_id": "a"}')


def test_a_message_of_another_record_is_rejected(codec: Codec) -> None:
    data = codec.encode("RoutingRule", rule_record())

    with pytest.raises(UnknownSchemaError, match="expected a AlertEvent"):
        codec.decode("AlertEvent", data)


def test_encoding_a_record_missing_a_required_field_is_invalid(codec: Codec) -> None:
    alert = make_alert()
    del alert["summary"]

    with pytest.raises(InvalidRecordError, match="AlertEvent"):
        codec.encode("AlertEvent", alert)


def test_a_time_out_of_range_is_invalid_not_a_crash(codec: Codec) -> None:
    with pytest.raises(InvalidRecordError, match="AlertEvent"):
        codec.encode("AlertEvent", make_alert(occurred_at=10**30))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_codec_errors(data: bytes) -> None:
    codec = Codec()
    try:
        codec.decode("AlertEvent", data)
    except CodecError:
        pass


@given(st.integers(min_value=10, max_value=80), st.binary(min_size=1, max_size=60))
def test_corrupted_bodies_raise_only_codec_errors(cut: int, noise: bytes) -> None:
    codec = Codec()
    data = codec.encode("AlertEvent", make_alert())
    corrupted = data[:cut] + noise
    try:
        codec.decode("AlertEvent", corrupted)
    except CodecError:
        pass
