"""``/customer/notification-routing-rules``: which alerts go to which channels."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from services.api import outbox
from services.api.deps import Conn, State, Tenant
from services.api.errors import (
    ERROR_RESPONSES,
    ApiError,
    not_found,
    refuse_unknown_query,
)
from services.api.models.common import require_storable
from services.api.models.rules import (
    RuleCreate,
    RuleFields,
    RuleList,
    RulePublic,
    RuleUpdate,
)

router = APIRouter(
    prefix="/customer/notification-routing-rules",
    tags=["notification routing rules"],
    responses=ERROR_RESPONSES,
)

_COLUMNS = tuple(RuleFields.model_fields)


def _load(
    conn: Conn, tenant: uuid.UUID, rule_id: uuid.UUID, lock: bool = False
) -> dict:
    query = "SELECT * FROM notification_routing_rules WHERE id = %s AND tenant_id = %s"
    row = conn.execute(
        query + (" FOR UPDATE" if lock else ""), (rule_id, tenant)
    ).fetchone()
    if row is None:
        raise not_found("rule_id", "routing rule")
    return row


def _check_channel(conn: Conn, tenant: uuid.UUID, channel_id: uuid.UUID) -> None:
    # KEY SHARE keeps the channel from being deleted before this rule commits.
    row = conn.execute(
        "SELECT 1 FROM notification_channels WHERE id = %s AND tenant_id = %s"
        " FOR KEY SHARE",
        (channel_id, tenant),
    ).fetchone()
    if row is None:
        raise ApiError(422, [("channel_id", "no notification channel with this id")])


def _values(fields: RuleFields) -> list[Any]:
    values = fields.model_dump(mode="json")
    return [values[column] for column in _COLUMNS]


@router.get("", response_model=RuleList, summary="List routing rules")
def list_rules(request: Request, conn: Conn, tenant: Tenant) -> dict[str, Any]:
    """Every rule of the tenant in evaluation order: ascending priority.

    It takes no query parameter.
    """
    refuse_unknown_query(request)
    # The router breaks ties by rule id (services.router.matcher); PostgreSQL
    # orders uuids as their text, so this is the order rules are tried in.
    rows = conn.execute(
        "SELECT * FROM notification_routing_rules WHERE tenant_id = %s"
        " ORDER BY priority, id",
        (tenant,),
    ).fetchall()
    return {"items": rows}


@router.post("", response_model=RulePublic, status_code=201, summary="Create a rule")
def create_rule(state: State, conn: Conn, tenant: Tenant, body: RuleCreate) -> dict:
    """Create a rule pointing at one of the tenant's channels."""
    require_storable(body.model_dump(mode="json"))
    columns = ", ".join(_COLUMNS)
    placeholders = ", ".join(["%s"] * len(_COLUMNS))
    with conn.transaction():
        _check_channel(conn, tenant, body.channel_id)
        row = conn.execute(
            f"INSERT INTO notification_routing_rules (id, tenant_id, {columns})"
            f" VALUES (%s, %s, {placeholders}) RETURNING *",
            (uuid.uuid4(), tenant, *_values(body)),
        ).fetchone()
        outbox.record_rule(conn, state.codec, row)
    return row


@router.get("/{rule_id}", response_model=RulePublic, summary="Read a rule")
def read_rule(conn: Conn, tenant: Tenant, rule_id: uuid.UUID) -> dict:
    """One routing rule."""
    return _load(conn, tenant, rule_id)


@router.patch("/{rule_id}", response_model=RulePublic, summary="Change a rule")
def update_rule(
    state: State, conn: Conn, tenant: Tenant, rule_id: uuid.UUID, body: RuleUpdate
) -> dict:
    """Change some fields of a rule; the result is validated as a whole."""
    changes = body.model_dump(exclude_unset=True)
    require_storable(body.model_dump(mode="json", exclude_unset=True))
    assignments = ", ".join(f"{c} = %s" for c in _COLUMNS)
    with conn.transaction():
        row = _load(conn, tenant, rule_id, lock=True)
        fields = RuleFields.model_validate({c: row[c] for c in _COLUMNS} | changes)
        if "channel_id" in changes:
            _check_channel(conn, tenant, fields.channel_id)
        row = conn.execute(
            f"UPDATE notification_routing_rules SET {assignments}, updated_at = now()"
            " WHERE id = %s RETURNING *",
            (*_values(fields), rule_id),
        ).fetchone()
        outbox.record_rule(conn, state.codec, row)
    return row


@router.delete("/{rule_id}", status_code=204, summary="Delete a rule")
def delete_rule(
    state: State, conn: Conn, tenant: Tenant, rule_id: uuid.UUID
) -> Response:
    """Delete a routing rule."""
    with conn.transaction():
        _load(conn, tenant, rule_id, lock=True)
        conn.execute("DELETE FROM notification_routing_rules WHERE id = %s", (rule_id,))
        outbox.record_rule_deleted(conn, str(rule_id))
    return Response(status_code=204)
