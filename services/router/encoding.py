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
