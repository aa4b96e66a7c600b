"""Encoding the router's output without re-encoding the alert it carries.

Every DeliveryCommand and every ``queued`` JobEvent ends with the AlertEvent
the router just read. Avro encodes a record as its fields one after another,
so such a message is the encoding of the fields before ``alert`` followed by the
alert's own body. When the input was written with the version the output embeds,
its body is reused as it is; re-encoding the alert was the largest cost per
match. The bytes are the same as ``Codec.encode`` gives (a test holds them to
that), and any schema not shaped this way is encoded by the codec instead.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
from fastavro.schema import parse_schema

from services.deliverer.text import truncate_utf8
from switchboard.codec import HEADER_LENGTH, SINGLE_OBJECT_MARKER, Codec

ALERT_FIELD = "alert"
# Avro writes a union as the branch index (zig-zag varint) then the value.
UNION_BRANCH_ONE = b"\x02"


class SplicedRecord:
    """One record type whose last field embeds the current AlertEvent version."""

    def __init__(self, codec: Codec, record: str) -> None:
        """Prepare the head (every field but the alert) of ``record``."""
        self._codec = codec
        self._record = record
        schema = codec.schema(record)
        self._prefix = SINGLE_OBJECT_MARKER + schema.fingerprint
        self._alert_marker = _alert_marker(schema.parsed, codec)
        head = dict(schema.parsed)
        head["fields"] = schema.parsed["fields"][:-1]
        head["name"] = f"{schema.parsed['name']}Head"
        self._head = parse_schema(head) if self._alert_marker is not None else None

    @property
    def splices(self) -> bool:
        """Whether the schema allows reusing the alert body (else the codec encodes)."""
        return self._head is not None

    def encode(self, value: dict[str, Any], alert_body: bytes) -> bytes:
        """Encode ``value``, whose ``alert`` is the alert encoded as ``alert_body``."""
        if self._head is None or value.get(ALERT_FIELD) is None:
            return self._codec.encode(self._record, value)
        buffer = io.BytesIO()
        buffer.write(self._prefix)
        fastavro.schemaless_writer(buffer, self._head, value)
        buffer.write(self._alert_marker)
        buffer.write(alert_body)
        return buffer.getvalue()


def _alert_marker(parsed: dict[str, Any], codec: Codec) -> bytes | None:
    """What precedes the alert body: b"" for a plain field, the branch of a union.

    None when the record does not end with the current AlertEvent.
    """
    last = parsed["fields"][-1]
    alert_name = codec.schema("AlertEvent").parsed["name"]
    kind = last["type"]
    if last["name"] != ALERT_FIELD:
        return None
    if isinstance(kind, dict) and kind.get("name") == alert_name:
        return b""
    if (
        isinstance(kind, list)
        and len(kind) == 2
        and kind[0] == "null"
        and isinstance(kind[1], dict)
        and kind[1].get("name") == alert_name
    ):
        return UNION_BRANCH_ONE
    return None


def alert_body(codec: Codec, raw: bytes, alert: dict[str, Any]) -> bytes:
    """The Avro body of ``alert`` in the current version, reusing ``raw`` if it is."""
    if codec.writer_schema(raw) is codec.schema("AlertEvent"):
        return raw[HEADER_LENGTH:]
    return codec.encode("AlertEvent", alert)[HEADER_LENGTH:]


# Every command and queued job event of a match carries the alert, and Kafka
# refuses records over its message.max.bytes (1 MB by default). An alert body
# within this bound leaves room for the fields around it in each record.
MAX_ALERT_BODY_BYTES = 512 * 1024
# What an over-long free-text field keeps once the alert had to be cut: far
# above what any channel shows (PagerDuty's summary stops at 1,024 characters).
CUT_TEXT_BYTES = 8 * 1024
CUT_LABELS_MARKER = "switchboard.labels_truncated"


class AlertTooLarge(Exception):
    """Raised when an alert does not fit a Kafka record even with its text cut."""


def fit_alert(
    codec: Codec, alert: dict[str, Any], body: bytes
) -> tuple[dict[str, Any], bytes]:
    """The alert and its body, cut to :data:`MAX_ALERT_BODY_BYTES` if over it.

    Routing an oversized alert would make every transaction carrying it fail
    for good and hold back its partition; delivering it with its free text
    visibly truncated keeps the page. Details go first, then labels (the
    smallest kept, with a marker label), then the other free-text fields. The
    identifying fields are never cut: an alert too large by those raises
    :class:`AlertTooLarge`.
    """
    if len(body) <= MAX_ALERT_BODY_BYTES:
        return alert, body
    reduced = dict(alert)
    for cut in (_cut_details, _cut_labels, _cut_free_text):
        reduced = cut(reduced, len(body))
        body = codec.encode("AlertEvent", reduced)[HEADER_LENGTH:]
        if len(body) <= MAX_ALERT_BODY_BYTES:
            return reduced, body
    raise AlertTooLarge(
        f"alert of {len(body)} bytes after cutting its text; at most "
        f"{MAX_ALERT_BODY_BYTES} bytes fit a delivery command"
    )


def _utf8_length(text: str | None) -> int:
    return len(text.encode("utf-8")) if text else 0


def _cut_details(alert: dict[str, Any], body_bytes: int) -> dict[str, Any]:
    details = alert.get("details")
    if not details:
        return alert
    others = body_bytes - _utf8_length(details)
    # A few bytes of slack for the string's length prefix and the marker.
    room = max(CUT_TEXT_BYTES, MAX_ALERT_BODY_BYTES - others - 64)
    return {**alert, "details": truncate_utf8(details, room)}


def _cut_labels(alert: dict[str, Any], body_bytes: int) -> dict[str, Any]:
    labels: dict[str, str] = alert.get("labels") or {}
    if not labels:
        return alert
    sizes = {
        key: _utf8_length(key) + _utf8_length(value) + 4
        for key, value in labels.items()
    }
    others = body_bytes - sum(sizes.values())
    room = max(CUT_TEXT_BYTES, MAX_ALERT_BODY_BYTES - others - 128)
    kept: dict[str, str] = {}
    for key in sorted(labels, key=lambda name: (sizes[name], name)):
        if sizes[key] > room:
            break
        kept[key] = labels[key]
        room -= sizes[key]
    kept[CUT_LABELS_MARKER] = f"{len(kept)} of {len(labels)} labels kept"
    return {**alert, "labels": kept}


def _cut_free_text(alert: dict[str, Any], _body_bytes: int) -> dict[str, Any]:
    reduced = dict(alert)
    for name in ("summary", "source", "alert_type", "site_id", "device_id"):
        if reduced.get(name) is not None:
            reduced[name] = truncate_utf8(reduced[name], CUT_TEXT_BYTES)
    return reduced
