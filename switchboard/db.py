"""PostgreSQL access with psycopg 3, and schema migrations with Alembic."""

from __future__ import annotations

import psycopg
from alembic import command
from alembic.config import Config
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

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
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()
        if not exists or exists[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


# How long a caller waits for a pooled connection unless it says otherwise.
POOL_WAIT_S = 30.0
# A new connection that cannot be made in this time is a failed attempt, so an
# unreachable host does not hold the pool's workers for the OS's TCP timeout.
CONNECT_TIMEOUT_S = 5
# How long the pool keeps retrying one lost connection (backing off from 1 s and
# doubling) before it gives up on it. It makes a new one as soon as a caller
# needs it, so a short give-up means the first attempt after an outage comes
# within seconds of the next request; with psycopg_pool's 5 minutes it could
# come minutes after the database is back.
RECONNECT_TIMEOUT_S = 10.0
# libpq options that make a database host that goes silent (no reset, no
# answer) fail a connection within about half a minute, instead of the OS's
# TCP timeout of a quarter of an hour: keepalive probes on an idle connection,
# and a bound on how long sent data may stay unacknowledged. A long statement
# is not affected; the server's TCP stack acknowledges while it runs.
SILENT_PEER_OPTIONS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def connection_options(application_name: str | None = None) -> dict[str, str | int]:
    """Keyword arguments for a service's long-lived connections.

    A connection timeout, the options above, and ``application_name`` to name
    the session in ``pg_stat_activity``.
    """
    options: dict[str, str | int] = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        **SILENT_PEER_OPTIONS,
    }
    if application_name:
        options["application_name"] = application_name
    return options


# SQLSTATEs of a server that cannot serve us right now, as opposed to a statement
# it refused: connection exceptions (class 08), insufficient resources (class
# 53: too many connections, disk full, out of memory), and the server ending or
# refusing sessions (57P01 shutdown, 57P02 crash, 57P03 starting up, 57P04
# database dropped, 57P05 idle session timeout).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or used now.

    True for a pool that has no connection to give in time and for a lost or
    refused connection (psycopg raises those without a SQLSTATE); False for
    errors a statement caused, such as a constraint violation or a cancelled
    query, which retrying the same request would not cure.
    """
    if isinstance(error, (PoolTimeout, TooManyRequests, PoolClosed)):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    sqlstate = error.sqlstate
    return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)


def error_line(error: BaseException) -> str:
    """A database error as one line for a log field: its class and first line.

    A connection error's message names the host, port and user, never the
    password; the lines after the first are libpq's hints.
    """
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def make_pool(
    settings: Settings,
    min_size: int = 1,
    max_size: int = 10,
    *,
    wait_s: float = POOL_WAIT_S,
    application_name: str | None = None,
) -> ConnectionPool:
    """A connection pool for the configured database, opened and ready.

    ``wait_s`` is how long :meth:`ConnectionPool.connection` waits for a free
    connection before it raises ``PoolTimeout``; ``application_name`` names the
    pool's sessions in ``pg_stat_activity``.

    Every connection is checked as it is handed out. After a database restart
    each pooled connection is dead, and without the check each would fail the
    statement of the caller that happens to get it, long after the restart.
    """
    kwargs = connection_options(application_name)
    pool: ConnectionPool

    def check(conn: psycopg.Connection) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            # One dead connection means the server restarted or dropped us, so
            # the idle ones are dead too. Sweeping them now spares the callers
            # that would get them a failed check and the pool's back-off sleep
            # after each.
            pool.check()
            raise

    pool = ConnectionPool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        check=check,
        timeout=wait_s,
        kwargs=kwargs,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        name=application_name,
    )
    pool.open(wait=True, timeout=30.0)
    return pool
