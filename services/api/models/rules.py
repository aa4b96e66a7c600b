"""Routing rule bodies and answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from switchboard.domain import EventKind, Severity

# Bounds keep every number inside PostgreSQL's integer and every list small
# enough to index; nobody needs a throttle window longer than a year.
MAX_PRIORITY = 1_000_000
MAX_THROTTLE_MINUTES = 525_600
MAX_MATCHERS = 1000

Matcher = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]


def _without_repeats(kinds: list[EventKind]) -> list[EventKind]:
    # A kind named twice means the same as once; it is stored once.
    return list(dict.fromkeys(kinds))


EventKinds = Annotated[list[EventKind], AfterValidator(_without_repeats)]
RuleName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
]


class RuleFields(BaseModel):
    """Every field of a rule a client sets, validated as a whole."""

    model_config = ConfigDict(extra="forbid")

    channel_id: uuid.UUID = Field(description="The tenant's channel to deliver to.")
    name: RuleName = Field(description="A name for people, 1-200 characters.")
    priority: int = Field(
        100, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="Lower runs first."
    )
    site_ids: list[Matcher] = Field(
        default_factory=list,
        max_length=MAX_MATCHERS,
        description="Match alerts of any of these sites; empty matches every site.",
    )
    device_prefixes: list[Matcher] = Field(
        default_factory=list,
        max_length=MAX_MATCHERS,
        description="Match device ids starting with any of these; empty matches all.",
    )
    alert_types: list[Matcher] = Field(
        default_factory=list,
        max_length=MAX_MATCHERS,
        description="Match any of these alert types; empty matches every type.",
    )
    min_severity: Severity | None = Field(
        None, description="Match alerts at least this severe; null matches all."
    )
    deliver_on: EventKinds = Field(
        default_factory=list,
        max_length=3,
        description="Event kinds to deliver; empty delivers every kind.",
    )
    throttle_minutes: int = Field(
        0,
        ge=0,
        le=MAX_THROTTLE_MINUTES,
        description="Suppress a repeat of the same kind of event for the same alert "
        "inside this window; 0 never throttles.",
    )
    stop_on_match: bool = Field(
        False, description="End evaluation when this rule matches."
    )
    enabled: bool = Field(True, description="Disabled rules never match.")


class RuleCreate(RuleFields):
    """A new routing rule."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel_id": "5b0c2f8e-3f7a-4d7e-9a51-2f1d9c0b6a11",
                    "name": "Critical core routers to the NOC",
                    "priority": 10,
                    "device_prefixes": ["core-"],
                    "min_severity": "HIGH",
                    "deliver_on": ["OPEN", "CLOSED"],
                    "throttle_minutes": 15,
                }
            ]
        },
    )


class RuleUpdate(BaseModel):
    """A partial change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    channel_id: uuid.UUID = Field(None, description="Another channel of the tenant.")
    name: RuleName = Field(None, description="A new name.")
    priority: int = Field(
        None, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="Lower first."
    )
    site_ids: list[Matcher] = Field(None, max_length=MAX_MATCHERS, description="Sites.")
    device_prefixes: list[Matcher] = Field(
        None, max_length=MAX_MATCHERS, description="Device id prefixes."
    )
    alert_types: list[Matcher] = Field(
        None, max_length=MAX_MATCHERS, description="Types."
    )
    min_severity: Severity | None = Field(
        None, description="null matches every severity."
    )
    deliver_on: EventKinds = Field(None, max_length=3, description="Event kinds.")
    throttle_minutes: int = Field(
        None, ge=0, le=MAX_THROTTLE_MINUTES, description="Throttle window in minutes."
    )
    stop_on_match: bool = Field(None, description="End evaluation on a match.")
    enabled: bool = Field(None, description="Enable or disable the rule.")


class RulePublic(RuleFields):
    """A routing rule as the API shows it."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID = Field(description="The rule id.")
    created_at: datetime = Field(description="When it was created.")
    updated_at: datetime = Field(description="When it last changed.")


class RuleList(BaseModel):
    """The tenant's rules in evaluation order (ascending priority)."""

    items: list[RulePublic] = Field(description="The rules.")
