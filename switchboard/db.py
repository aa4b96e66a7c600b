"""PostgreSQL access with psycopg 3, and schema migrations with Alembic."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from psycopg_pool import ConnectionPool

from switchboard.settings import PROJECT_ROOT, Settings

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def sqlalchemy_url(database_url: str) -> str:
    """The libpq URL in the form SQLAlchemy needs for the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ValueError("SWITCHBOARD_DATABASE_URL must start with postgresql://")


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration over ``migrations/`` for one database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``; already applied is a no-op."""
    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None before the first migration."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
        if not exists or exists[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


def make_pool(
    settings: Settings, min_size: int = 1, max_size: int = 10
) -> ConnectionPool:
    """A connection pool for the configured database, opened and ready."""
    pool = ConnectionPool(
        settings.database_url, min_size=min_size, max_size=max_size, open=False
    )
    pool.open(wait=True, timeout=30.0)
    return pool
