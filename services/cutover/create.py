"""Validating and creating channels and rules exactly as the API does.

The API's route handlers validate a request body against the models in
``services.api.models`` (built from each channel type's ``Config`` and
``Secrets`` in ``CHANNEL_SPECS``), refuse text PostgreSQL cannot store, refuse
what the channel type's ``secret_problems`` finds at save (a secret the
settings need, a credential kept in plain configuration), refuse targets on
private addresses unless the operator allows them
(``services.api.targets``), encrypt secrets with :class:`SecretBox` and write an
outbox row in the same transaction (``services.api.outbox``). Those steps live
inside the handlers, so this module puts the same calls behind plain functions
taking a psycopg connection; the API could call them too.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from services.api import outbox
from services.api.errors import problems_of
from services.api.models.channels import CREATE_MODELS
from services.api.models.common import unstorable_text
from services.api.models.rules import RuleCreate, RuleFields
from services.api.targets import refused_targets
from switchboard.codec import Codec
from switchboard.domain import ChannelType
from switchboard.secrets import SecretBox

RULE_COLUMNS = tuple(RuleFields.model_fields)


class InvalidInput(Exception):
    """Raised when a channel or rule would be refused by the API; names each field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        """Carry (field, problem) pairs, as the API's 422 body does."""
        super().__init__("; ".join(f"{f}: {p}" for f, p in problems))
        self.problems = problems


@dataclass(frozen=True)
class ValidChannel:
    """A channel that passed the API's validation, in its stored form."""

    channel_type: str
    name: str
    enabled: bool
    config: dict[str, Any]
    # Plain secrets: only ever encrypted or listed by name, never shown.
    secrets: dict[str, Any] = field(repr=False)


def validate_channel(
    channel_type: str,
    name: str,
    enabled: bool,
    config: dict[str, Any],
    secrets: dict[str, Any],
    *,
    allow_private_targets: bool,
) -> ValidChannel:
    """Validate a channel as ``POST /customer/notification-channels`` does."""
    model = CREATE_MODELS.get(ChannelType(channel_type))
    body = {
        "channel_type": channel_type,
        "name": name,
        "enabled": enabled,
        "config": config,
        "secrets": secrets,
    }
    try:
        created = model.model_validate(body)
    except ValidationError as error:
        raise InvalidInput(problems_of(error)) from None

    config_json = created.config.model_dump(mode="json")
    secrets_json = created.secrets.model_dump(mode="json", exclude_none=True)
    _check_storable(created.name, config_json, secrets_json)

    # What the API refuses when a channel is saved: a secret its settings need
    # and lack, a credential in plain configuration, a private target.
    problems = created.config.secret_problems(created.secrets)
    if not allow_private_targets:
        problems += refused_targets(channel_type, created.config, created.secrets)
    if problems:
        raise InvalidInput(problems)
    return ValidChannel(
        channel_type, created.name, created.enabled, config_json, secrets_json
    )


def _check_storable(name: str, config: dict[str, Any], secrets: dict[str, Any]) -> None:
    problems = (
        unstorable_text(name, "name")
        + unstorable_text(config, "config")
        + unstorable_text(secrets, "secrets")
    )
    try:
        json.dumps(config, allow_nan=False)
    except ValueError:
        problems.append(("config", "numbers must be finite"))
    if problems:
        raise InvalidInput(problems)


def validate_rule(fields: dict[str, Any]) -> RuleCreate:
    """Validate a rule as ``POST /customer/notification-routing-rules`` does."""
    try:
        rule = RuleCreate.model_validate(fields)
    except ValidationError as error:
        raise InvalidInput(problems_of(error)) from None
    problems = unstorable_text(rule.model_dump(mode="json"), "")
    if problems:
        raise InvalidInput(problems)
    return rule


def insert_channel(
    conn: psycopg.Connection,
    box: SecretBox,
    codec: Codec,
    tenant_id: uuid.UUID,
    channel: ValidChannel,
    channel_id: uuid.UUID | None = None,
    legacy_integration_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Store a validated channel and its outbox row; the caller owns the transaction."""
    token = box.encrypt(channel.secrets) if channel.secrets else None
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(
            "INSERT INTO notification_channels (id, tenant_id, name, channel_type,"
            " enabled, config, secrets_encrypted, legacy_integration_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (
                channel_id or uuid.uuid4(),
                tenant_id,
                channel.name,
                channel.channel_type,
                channel.enabled,
                Jsonb(channel.config),
                token,
                legacy_integration_id,
            ),
        ).fetchone()
    assert row is not None
    outbox.record_channel(conn, codec, row)
    return row


def insert_rule(
    conn: psycopg.Connection,
    codec: Codec,
    tenant_id: uuid.UUID,
    rule: RuleCreate,
    rule_id: uuid.UUID | None = None,
    legacy_route_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Store a validated rule and its outbox row; the caller owns the transaction."""
    _require_channel(conn, tenant_id, rule.channel_id)
    values = rule.model_dump(mode="json")
    columns = ", ".join(RULE_COLUMNS)
    placeholders = ", ".join(["%s"] * len(RULE_COLUMNS))
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(
            f"INSERT INTO notification_routing_rules (id, tenant_id, {columns},"
            f" legacy_route_id) VALUES (%s, %s, {placeholders}, %s) RETURNING *",
            (
                rule_id or uuid.uuid4(),
                tenant_id,
                *[values[c] for c in RULE_COLUMNS],
                legacy_route_id,
            ),
        ).fetchone()
    assert row is not None
    outbox.record_rule(conn, codec, row)
    return row


def _require_channel(
    conn: psycopg.Connection, tenant_id: uuid.UUID, channel_id: uuid.UUID
) -> None:
    # KEY SHARE keeps the channel from being deleted before this rule commits.
    row = conn.execute(
        "SELECT 1 FROM notification_channels WHERE id = %s AND tenant_id = %s"
        " FOR KEY SHARE",
        (channel_id, tenant_id),
    ).fetchone()
    if row is None:
        raise InvalidInput([("channel_id", "no notification channel with this id")])


def secret_names(model_secrets: dict[str, Any] | BaseModel) -> list[str]:
    """The names of the secrets that are set, for showing instead of values."""
    if isinstance(model_secrets, BaseModel):
        model_secrets = model_secrets.model_dump(exclude_none=True)
    return sorted(name for name, value in model_secrets.items() if value is not None)
