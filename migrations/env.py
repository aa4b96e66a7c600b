"""Alembic environment: runs the SQL migrations against SWITCHBOARD_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from switchboard.db import sqlalchemy_url
from switchboard.settings import get_settings

url = context.config.attributes.get("database_url") or get_settings().database_url

engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
