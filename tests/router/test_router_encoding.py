"""Spliced output encoding gives exactly the codec's bytes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.encoding import SplicedRecord, alert_body
from switchboard.codec import Codec, default_codec
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
