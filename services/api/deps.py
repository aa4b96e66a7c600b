"""What routes depend on: the shared resources, a database connection, the tenant.

Requests authenticate with ``Authorization: Bearer <key>``. Keys are random
tokens stored as their SHA-256, so a database leak does not leak usable keys;
a revoked key is refused like an unknown one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import psycopg
from confluent_kafka import Producer
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.api.errors import ApiError
from switchboard.codec import Codec
from switchboard.secrets import SecretBox
from switchboard.settings import Settings

_bearer = HTTPBearer(
    auto_error=False,
    description="A tenant API key from `switchboard tenant create` or `tenant key`.",
)
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


@dataclass
class ApiState:
    """Resources shared by every request, created once at start-up."""

    settings: Settings
    pool: ConnectionPool
    producer: Producer
    codec: Codec
    box: SecretBox


def get_state(request: Request) -> ApiState:
    """The application's shared resources."""
    return request.app.state.api


def get_conn(
    state: Annotated[ApiState, Depends(get_state)],
) -> Iterator[psycopg.Connection]:
    """A pooled autocommit connection returning dict rows; writes open transactions."""
    with state.pool.connection() as conn:
        conn.autocommit = True
        conn.row_factory = dict_row  # type: ignore[assignment]
        yield conn


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()


def get_tenant(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    conn: Annotated[psycopg.Connection, Depends(get_conn)],
) -> uuid.UUID:
    """The tenant of the request's API key, or a 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            [("Authorization", "send `Authorization: Bearer <api key>`")],
            _UNAUTHORIZED,
        )
    row = conn.execute(
        "SELECT tenant_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(credentials.credentials),),
    ).fetchone()
    if row is None:
        raise ApiError(
            401, [("Authorization", "unknown or revoked API key")], _UNAUTHORIZED
        )
    return row["tenant_id"]


Conn = Annotated[psycopg.Connection, Depends(get_conn)]
Tenant = Annotated[uuid.UUID, Depends(get_tenant)]
State = Annotated[ApiState, Depends(get_state)]
