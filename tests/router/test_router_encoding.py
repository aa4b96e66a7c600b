"""Spliced output encoding gives exactly the codec's bytes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.deliverer.text import TRUNCATION_MARKER
from services.router.encoding import (
    CUT_LABELS_MARKER,
    MAX_ALERT_BODY_BYTES,
    AlertTooLarge,
    SplicedRecord,
    alert_body,
    fit_alert,
)
from switchboard.codec import HEADER_LENGTH, Codec, default_codec
from switchboard.domain import JobState
from switchboard.jobs import job_event, new_command

V1_CODEC = Codec(reader_versions={"AlertEvent": 1})
CODEC = default_codec()
COMMANDS = SplicedRecord(CODEC, "DeliveryCommand")
JOB_EVENTS = SplicedRecord(CODEC, "JobEvent")

texts = st.text(max_size=12)
alerts = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str),
        "tenant_id": texts,
        "alert_id": texts,
        "kind": st.sampled_from(["OPEN", "ACKNOWLEDGED", "CLOSED"]),
        "severity": st.sampled_from(["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]),
        "alert_type": texts,
        "site_id": st.none() | texts,
        "device_id": st.none() | texts,
        "summary": texts,
        "details": st.none() | texts,
        "labels": st.dictionaries(texts, texts, max_size=3),
        "occurred_at": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)
        ).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)
        ),
        "source": texts,
    }
)


def test_current_schemas_are_spliced() -> None:
    """Both outputs end with the current AlertEvent, so the fast path is in use."""
    assert COMMANDS.splices and JOB_EVENTS.splices


@settings(max_examples=150, deadline=None)
@given(alert=alerts, rule_id=st.none() | texts, older=st.booleans())
def test_spliced_bytes_equal_codec_bytes(alert: dict, rule_id: str | None, older: bool):
    """Command, queued and suppressed events: the same bytes as Codec.encode."""
    if older:
        alert.pop("labels")
        raw = V1_CODEC.encode("AlertEvent", alert)
    else:
        raw = CODEC.encode("AlertEvent", alert)
    decoded = CODEC.decode("AlertEvent", raw)
    body = alert_body(CODEC, raw, decoded)
    command = new_command(decoded, f"ch-{uuid.uuid4()}", "email", rule_id)
    queued = job_event(command, JobState.QUEUED, 1)
    suppressed = job_event(command, JobState.SUPPRESSED, 0, reason="throttled")

    assert COMMANDS.encode(command, body) == CODEC.encode("DeliveryCommand", command)
    assert JOB_EVENTS.encode(queued, body) == CODEC.encode("JobEvent", queued)
    assert JOB_EVENTS.encode(suppressed, body) == CODEC.encode("JobEvent", suppressed)


def _alert(**fields: object) -> dict:
    alert = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "t",
        "alert_id": "a",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": None,
        "device_id": None,
        "summary": "link down",
        "details": None,
        "labels": {},
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "source": "tests",
    }
    alert.update(fields)
    return alert


def _fit(alert: dict) -> tuple[dict, bytes]:
    body = alert_body(CODEC, CODEC.encode("AlertEvent", alert), alert)
    return fit_alert(CODEC, alert, body)


def test_an_alert_within_the_bound_is_left_alone() -> None:
    alert = _alert(details="x" * 1000, labels={"k": "v"})

    fitted, body = _fit(alert)

    assert fitted is alert
    assert body == CODEC.encode("AlertEvent", alert)[HEADER_LENGTH:]


def test_oversized_details_are_cut_at_a_character_with_a_marker() -> None:
    # Four-byte emoji, so a byte cut could land inside one.
    alert = _alert(details="🚨" * 300_000, labels={"site": "ams"})

    fitted, body = _fit(alert)

    assert MAX_ALERT_BODY_BYTES - 1024 < len(body) <= MAX_ALERT_BODY_BYTES
    assert fitted["details"].endswith(TRUNCATION_MARKER)
    assert set(fitted["details"].removesuffix(TRUNCATION_MARKER)) == {"🚨"}
    assert fitted["labels"] == {"site": "ams"}
    assert CODEC.decode("AlertEvent", CODEC.encode("AlertEvent", fitted)) == fitted


def test_oversized_labels_keep_the_small_ones_and_say_so() -> None:
    labels = {f"big-{n}": "y" * 100_000 for n in range(8)}
    labels["site"] = "ams"
    alert = _alert(labels=labels)

    fitted, body = _fit(alert)

    assert len(body) <= MAX_ALERT_BODY_BYTES
    assert fitted["labels"]["site"] == "ams"
    kept = len(fitted["labels"]) - 1
    assert fitted["labels"][CUT_LABELS_MARKER] == f"{kept} of 9 labels kept"
    assert 1 < kept < 9


def test_an_alert_too_large_by_its_identifiers_is_refused() -> None:
    alert = _alert(alert_id="a" * (MAX_ALERT_BODY_BYTES + 1))

    with pytest.raises(AlertTooLarge):
        _fit(alert)
