"""Tenants and their API keys, managed by operators from the command line.

A key is shown once, when it is issued; only its SHA-256 and a short prefix
(to recognise and revoke it) are stored.
"""

from __future__ import annotations

import secrets
import uuid

import psycopg

from services.api.deps import hash_key

KEY_PREFIX = "sbk_"
# The stored prefix: "sbk_" and the first 8 random characters.
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8


class TenantError(Exception):
    """Raised for an unknown tenant, a duplicate name or an unknown key prefix."""


def new_key() -> str:
    """A fresh random API key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def issue_key(conn: psycopg.Connection, tenant_id: uuid.UUID) -> str:
    """Store a new key for a tenant and return it; it cannot be shown again."""
    key = new_key()
    conn.execute(
        "INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix)"
        " VALUES (%s, %s, %s, %s)",
        (uuid.uuid4(), tenant_id, hash_key(key), key[:SHOWN_PREFIX_LENGTH]),
    )
    return key


def create_tenant(conn: psycopg.Connection, name: str) -> tuple[uuid.UUID, str]:
    """Create a tenant and its first key: (tenant id, key)."""
    tenant_id = uuid.uuid4()
    with conn.transaction():
        try:
            conn.execute(
                "INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant_id, name)
            )
        except psycopg.errors.UniqueViolation:
            raise TenantError(f"a tenant named {name!r} exists already") from None
        except psycopg.errors.CheckViolation:
            raise TenantError("a tenant name has 1 to 200 characters") from None
        return tenant_id, issue_key(conn, tenant_id)


def issue_key_for(conn: psycopg.Connection, name: str) -> str:
    """Issue another key for the tenant called ``name``."""
    with conn.transaction():
        row = conn.execute("SELECT id FROM tenants WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise TenantError(f"no tenant named {name!r}")
        return issue_key(conn, row[0])


def revoke_key(conn: psycopg.Connection, key_prefix: str) -> int:
    """Revoke the one active key with this prefix (or this whole key)."""
    prefix = key_prefix[:SHOWN_PREFIX_LENGTH]
    if len(key_prefix) > SHOWN_PREFIX_LENGTH:
        match, value = "key_hash = %s", hash_key(key_prefix)
    else:
        match, value = "key_prefix = %s", prefix
    with conn.transaction():
        rows = conn.execute(
            f"SELECT id FROM api_keys WHERE {match} AND revoked_at IS NULL", (value,)
        ).fetchall()
        if len(rows) > 1:
            raise TenantError(
                f"{len(rows)} keys start with {prefix!r}; give the whole key"
            )
        if not rows:
            raise TenantError(f"no active key starts with {prefix!r}")
        conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE id = %s", (rows[0][0],)
        )
        return 1
