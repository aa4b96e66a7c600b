"""Alert events as JSON (for `switchboard emit` and scripts) and their Kafka form."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from switchboard.domain import EventKind, Severity

MAX_TEXT_CHARS = 100_000

# C0 control characters other than tab, newline and carriage return: NUL cannot
# be stored in PostgreSQL text and the others garble every channel's output.
_CONTROL = frozenset(chr(code) for code in range(0x20)) - {"\t", "\n", "\r"}


class AlertEventIn(BaseModel):
    """One AlertEvent as JSON; ``event_id`` and ``occurred_at`` may be omitted."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    tenant_id: str = Field(min_length=1, max_length=200)
    alert_id: str = Field(min_length=1, max_length=500)
    kind: EventKind
    severity: Severity
    alert_type: str = Field(min_length=1, max_length=200)
    site_id: str | None = Field(None, max_length=200)
    device_id: str | None = Field(None, max_length=200)
    summary: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    details: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    labels: dict[str, str] = Field(default_factory=dict)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str = Field("switchboard-emit", min_length=1, max_length=200)

    @field_validator("kind", "severity", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "tenant_id",
        "alert_id",
        "alert_type",
        "site_id",
        "device_id",
        "summary",
        "details",
        "labels",
        "source",
    )
    @classmethod
    def _printable(cls, value: Any, info: ValidationInfo) -> Any:
        texts = [value] if isinstance(value, str) else []
        if isinstance(value, dict):
            texts = [text for item in value.items() for text in item]
        for text in texts:
            bad = next((char for char in text if char in _CONTROL), None)
            if bad is not None:
                raise ValueError(
                    f"{info.field_name} contains control character "
                    f"U+{ord(bad):04X}; only tab, newline and CR are allowed"
                )
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a timezone (e.g. 2026-12-03T10:00:00Z)")
        return value

    def to_avro(self) -> dict[str, Any]:
        """The record the codec encodes as an AlertEvent."""
        value = self.model_dump()
        value["event_id"] = str(self.event_id)
        value["kind"] = str(self.kind)
        value["severity"] = str(self.severity)
        return value

    @property
    def key(self) -> str:
        """The alerts topic key: all events of one alert share a partition."""
        return f"{self.tenant_id}/{self.alert_id}"


def alert_key(alert: dict[str, Any]) -> str:
    """The alerts topic key of a decoded AlertEvent."""
    return f"{alert['tenant_id']}/{alert['alert_id']}"
