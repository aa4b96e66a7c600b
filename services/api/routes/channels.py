"""``/customer/notification-channels``: the tenant's channels, secrets and tests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from services.api import outbox
from services.api.deps import ApiState, Conn, State, Tenant
from services.api.errors import (
    ERROR_RESPONSES,
    ApiError,
    ErrorBody,
    conflict,
    not_found,
    problems_of,
    refuse_unknown_query,
)
from services.api.models.channels import (
    ChannelCreate,
    ChannelList,
    ChannelPublic,
    ChannelUpdate,
    TestQueued,
    create_examples,
)
from services.api.models.common import require_storable
from services.api.publish import queue_command
from services.api.targets import refused_targets
from services.deliverer.channels import CHANNEL_SPECS
from services.deliverer.channels.base import ChannelConfigBase
from switchboard.config_cache import channel_key
from switchboard.domain import ChannelType, EventKind, Severity
from switchboard.jobs import new_command, utc_now

router = APIRouter(
    prefix="/customer/notification-channels",
    tags=["notification channels"],
    responses=ERROR_RESPONSES,
)

CHANNEL = "notification channel"
TEST_SUMMARY = "Switchboard test notification"
PUBLISH_WAIT_S = 5.0
PUBLISH_POLL_S = 0.1


def _load(
    conn: Conn, tenant: uuid.UUID, channel_id: uuid.UUID, lock: bool = False
) -> dict:
    query = "SELECT * FROM notification_channels WHERE id = %s AND tenant_id = %s"
    row = conn.execute(
        query + (" FOR UPDATE" if lock else ""), (channel_id, tenant)
    ).fetchone()
    if row is None:
        raise not_found("channel_id", CHANNEL)
    return row


def _public(state: ApiState, row: dict[str, Any]) -> dict[str, Any]:
    stored = (
        state.box.decrypt(row["secrets_encrypted"]) if row["secrets_encrypted"] else {}
    )
    secrets_model = CHANNEL_SPECS[ChannelType(row["channel_type"])].secrets_model
    return {
        "id": row["id"],
        "channel_type": row["channel_type"],
        "name": row["name"],
        "enabled": row["enabled"],
        "config": row["config"],
        "secrets_set": {
            name: stored.get(name) is not None for name in secrets_model.model_fields
        },
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _stored_forms(
    state: ApiState,
    channel_type: str,
    config: ChannelConfigBase,
    secrets: BaseModel,
) -> tuple[dict[str, Any], str | None]:
    """Check a channel's validated config and secrets; their stored forms."""
    config_json = config.model_dump(mode="json")
    secrets_json = secrets.model_dump(mode="json", exclude_none=True)
    require_storable(config_json, "config")
    require_storable(secrets_json, "secrets")
    try:
        json.dumps(config_json, allow_nan=False)
    except ValueError:
        raise ApiError(422, [("config", "numbers must be finite")]) from None
    problems = config.secret_problems(secrets)
    if not state.settings.allow_private_targets:
        problems += refused_targets(channel_type, config, secrets)
    if problems:
        raise ApiError(422, problems)
    return config_json, state.box.encrypt(secrets_json) if secrets_json else None


@router.get("", response_model=ChannelList, summary="List channels")
def list_channels(
    request: Request, state: State, conn: Conn, tenant: Tenant
) -> dict[str, Any]:
    """Every channel of the tenant, ordered by name; it takes no query parameter."""
    refuse_unknown_query(request)
    rows = conn.execute(
        "SELECT * FROM notification_channels WHERE tenant_id = %s ORDER BY name, id",
        (tenant,),
    ).fetchall()
    return {"items": [_public(state, row) for row in rows]}


@router.post(
    "", response_model=ChannelPublic, status_code=201, summary="Create a channel"
)
def create_channel(
    state: State,
    conn: Conn,
    tenant: Tenant,
    body: Annotated[ChannelCreate, Body(openapi_examples=create_examples())],
) -> dict[str, Any]:
    """Create a channel; its type decides which `config` and `secrets` it takes."""
    require_storable(body.name, "name")
    config, secrets = _stored_forms(state, body.channel_type, body.config, body.secrets)
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO notification_channels"
            " (id, tenant_id, name, channel_type, enabled, config, secrets_encrypted)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (
                uuid.uuid4(),
                tenant,
                body.name,
                body.channel_type,
                body.enabled,
                Jsonb(config),
                secrets,
            ),
        ).fetchone()
        outbox.record_channel(conn, state.codec, row)
    return _public(state, row)


@router.get("/{channel_id}", response_model=ChannelPublic, summary="Read a channel")
def read_channel(
    state: State, conn: Conn, tenant: Tenant, channel_id: uuid.UUID
) -> dict[str, Any]:
    """One channel, with which of its secrets are set."""
    return _public(state, _load(conn, tenant, channel_id))


def _merged(stored: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(stored)
    for name, value in (changes or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _validated(
    model: type[BaseModel], values: dict[str, Any], prefix: str
) -> BaseModel:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ApiError(422, problems_of(error, prefix)) from None


@router.patch("/{channel_id}", response_model=ChannelPublic, summary="Change a channel")
def update_channel(
    state: State, conn: Conn, tenant: Tenant, channel_id: uuid.UUID, body: ChannelUpdate
) -> dict[str, Any]:
    """Change some fields; `config` and `secrets` merge into the stored ones."""
    require_storable(body.model_dump(exclude_unset=True))
    with conn.transaction():
        row = _load(conn, tenant, channel_id, lock=True)
        spec = CHANNEL_SPECS[ChannelType(row["channel_type"])]
        stored_secrets = (
            state.box.decrypt(row["secrets_encrypted"])
            if row["secrets_encrypted"]
            else {}
        )
        config = _validated(
            spec.config_model, _merged(row["config"], body.config), "config"
        )
        secrets = _validated(
            spec.secrets_model, _merged(stored_secrets, body.secrets), "secrets"
        )
        config_json, secrets_token = _stored_forms(
            state, row["channel_type"], config, secrets
        )
        row = conn.execute(
            "UPDATE notification_channels SET name = %s, enabled = %s, config = %s,"
            " secrets_encrypted = %s, updated_at = now() WHERE id = %s RETURNING *",
            (
                body.name if body.name is not None else row["name"],
                body.enabled if body.enabled is not None else row["enabled"],
                Jsonb(config_json),
                secrets_token,
                channel_id,
            ),
        ).fetchone()
        outbox.record_channel(conn, state.codec, row)
    return _public(state, row)


def _set_enabled(
    state: ApiState, conn: Conn, tenant: uuid.UUID, channel_id: uuid.UUID, enabled: bool
) -> dict[str, Any]:
    with conn.transaction():
        _load(conn, tenant, channel_id, lock=True)
        row = conn.execute(
            "UPDATE notification_channels SET enabled = %s, updated_at = now()"
            " WHERE id = %s RETURNING *",
            (enabled, channel_id),
        ).fetchone()
        outbox.record_channel(conn, state.codec, row)
    return _public(state, row)


@router.post("/{channel_id}/enable", response_model=ChannelPublic, summary="Enable")
def enable_channel(
    state: State, conn: Conn, tenant: Tenant, channel_id: uuid.UUID
) -> dict[str, Any]:
    """Let rules deliver to this channel again."""
    return _set_enabled(state, conn, tenant, channel_id, True)


@router.post("/{channel_id}/disable", response_model=ChannelPublic, summary="Disable")
def disable_channel(
    state: State, conn: Conn, tenant: Tenant, channel_id: uuid.UUID
) -> dict[str, Any]:
    """Stop deliveries to this channel; queued jobs for it are cancelled."""
    return _set_enabled(state, conn, tenant, channel_id, False)


@router.delete("/{channel_id}", status_code=204, summary="Delete a channel")
def delete_channel(
    state: State, conn: Conn, tenant: Tenant, channel_id: uuid.UUID
) -> Response:
    """Delete a channel and every routing rule that points at it."""
    with conn.transaction():
        _load(conn, tenant, channel_id, lock=True)
        rules = conn.execute(
            "SELECT id FROM notification_routing_rules WHERE channel_id = %s"
            " ORDER BY id FOR UPDATE",
            (channel_id,),
        ).fetchall()
        conn.execute("DELETE FROM notification_channels WHERE id = %s", (channel_id,))
        for rule in rules:
            outbox.record_rule_deleted(conn, str(rule["id"]))
        outbox.record_channel_deleted(conn, str(channel_id))
    return Response(status_code=204)


def _test_alert(tenant: uuid.UUID) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    return {
        "event_id": event_id,
        "tenant_id": str(tenant),
        "alert_id": f"test-{event_id}",
        "kind": str(EventKind.OPEN),
        "severity": str(Severity.INFO),
        "alert_type": "test",
        "site_id": None,
        "device_id": None,
        "summary": TEST_SUMMARY,
        "details": None,
        "labels": {},
        "occurred_at": utc_now(),
        "source": "switchboard-api",
    }


def _wait_published(conn: Conn, channel_id: str) -> None:
    # A test sent right after a change must find the channel as changed in the
    # deliverers' cache, so wait briefly for the relay to publish it.
    deadline = time.monotonic() + PUBLISH_WAIT_S
    while conn.execute(
        "SELECT 1 FROM config_outbox WHERE message_key = %s AND published_at IS NULL"
        " AND failed_at IS NULL LIMIT 1",
        (channel_key(channel_id),),
    ).fetchone():
        if time.monotonic() > deadline:
            raise ApiError(
                503, [("channel_id", "the channel's last change is not published yet")]
            )
        time.sleep(PUBLISH_POLL_S)


@router.post(
    "/{channel_id}/test",
    response_model=TestQueued,
    status_code=202,
    summary="Send a test notification",
    responses={
        409: {"model": ErrorBody, "description": "The channel is disabled."},
        503: {
            "model": ErrorBody,
            "description": "Kafka is unavailable, or the channel's last change "
            "is not yet published to the pipeline.",
        },
    },
)
def test_channel(
    state: State, conn: Conn, tenant: Tenant, channel_id: uuid.UUID
) -> dict[str, Any]:
    """Send a real test notification through the pipeline; follow the returned job."""
    row = _load(conn, tenant, channel_id)
    if not row["enabled"]:
        raise conflict("channel_id", "the channel is disabled; enable it to test it")
    _wait_published(conn, str(channel_id))
    alert = _test_alert(tenant)
    command = new_command(
        alert, str(channel_id), row["channel_type"], None, is_test=True
    )
    queue_command(state.producer, state.codec, command)
    return {"job_id": command["job_id"], "event_id": alert["event_id"]}
