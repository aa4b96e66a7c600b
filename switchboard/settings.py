"""Settings from environment variables prefixed with ``SWITCHBOARD_``.

The defaults point at the local development stack that ``switchboard stack up``
starts, so a fresh checkout works without any configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A development key so the local stack works out of the box; `stack status` and the
# commands that encrypt or decrypt channel secrets (api, deliverer, secrets rotate)
# warn when it is in use. Production deployments set SWITCHBOARD_SECRET_KEY.
DEVELOPMENT_SECRET_KEY = "c3dpdGNoYm9hcmQtZGV2ZWxvcG1lbnQta2V5LTAwMDA="

STACK_COMPONENTS = ("kafka", "postgres", "mosquitto")

_DURATION_PATTERN = re.compile(r"^(\d+)(ms|s|m|h)$")
_DURATION_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


MASK = "***"


def masked_url(url: str) -> str:
    """``url`` with any password (in the user part or the query) replaced by ***.

    For printing a database URL: the password must never reach a terminal or a
    log, while user, host, port and database help an operator find the server.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    user_info, at, host_port = netloc.rpartition("@")
    if at and ":" in user_info:
        netloc = f"{user_info.split(':', 1)[0]}:{MASK}@{host_port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key == "password" for key, _ in pairs):
            masked = [(k, MASK if k == "password" else v) for k, v in pairs]
            query = urlencode(masked, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def database_address(url: str) -> str:
    """``host:port/database`` of a database URL, for messages (no user or password)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or 5432
    except ValueError:
        port = "?"
    return f"{host}:{port}/{parts.path.lstrip('/')}"


def parse_duration_ms(text: str) -> int:
    """Parse a duration such as ``500ms``, ``10s``, ``1m`` or ``1h`` into ms."""
    match = _DURATION_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"not a duration (use e.g. 500ms, 10s, 1m, 1h): {text!r}")
    return int(match.group(1)) * _DURATION_UNIT_MS[match.group(2)]


class Settings(BaseSettings):
    """Every setting of every Switchboard process, read once from the environment."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:19092", description="Kafka bootstrap servers, comma separated."
    )
    database_url: str = Field(
        "postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard",
        description="PostgreSQL connection URL (libpq form).",
    )
    mqtt_host: str = Field("127.0.0.1", description="MQTT broker of the local stack.")
    mqtt_port: int = Field(
        11883,
        ge=1,
        le=65534,
        description="MQTT broker port of the local stack (the next one needs a login).",
    )

    stack_components: str = Field(
        ",".join(STACK_COMPONENTS),
        description=(
            "Components `stack up` starts; leave one out to use an existing "
            "service given by its address setting."
        ),
    )
    state_dir: Path = Field(
        PROJECT_ROOT / ".switchboard",
        description="Where the local stack keeps data, logs and pid files.",
    )
    test_backend: str = Field(
        "local",
        description="`local` (stack up) or `testcontainers` (Docker) for tests.",
    )

    secret_key: SecretStr = Field(
        SecretStr(DEVELOPMENT_SECRET_KEY),
        description="Fernet key (urlsafe base64, 32 bytes) that encrypts secrets.",
    )
    previous_secret_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated older Fernet keys still accepted for reading.",
    )

    alerts_topic: str = Field("alerts", description="Topic upstream publishes to.")
    topic_partitions: int = Field(3, ge=1, description="Partitions of new topics.")
    topic_replication: int = Field(1, ge=1, description="Replication of new topics.")
    retention_ms: int = Field(
        7 * 24 * 3_600_000, ge=60_000, description="Retention of non-compacted topics."
    )

    retry_delays: str = Field(
        "10s,1m,10m,1h", description="Retry tiers, shortest first (e.g. 10s,1m,10m,1h)."
    )
    max_attempts: int = Field(6, ge=1, description="Attempts before a job is dead.")
    allow_private_targets: bool = Field(
        False, description="Allow URL targets on loopback, private or link-local nets."
    )
    deliverer_max_in_flight: int = Field(
        1000,
        ge=1,
        description=(
            "Messages a deliverer process holds at once, sending or waiting for a "
            "busy channel; beyond it the deliverer pauses its partitions."
        ),
    )

    log_level: str = Field("INFO", description="Root log level.")
    log_format: str = Field("text", description="`text` or `json`.")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus port of a service; 0 disables."
    )
    api_port: int = Field(
        8080,
        ge=1,
        le=65535,
        description="Port `switchboard api` listens on (127.0.0.1).",
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The fields repr() and str() show, with the database password masked."""
        for name, value in super().__repr_args__():
            if name == "database_url" and isinstance(value, str):
                value = masked_url(value)
            yield name, value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",") if part.strip()]
        if not servers:
            raise ValueError("give at least one host:port")
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{server!r} is not host:port")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError("must be a postgresql://user:password@host:port/db URL")
        try:
            _ = url.port  # raises ValueError for a port that is not 1-65535
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        if not url.hostname or not url.path.strip("/"):
            raise ValueError("must name a host and a database")
        return value

    @field_validator("retry_delays")
    @classmethod
    def _check_retry_delays(cls, value: str) -> str:
        delays = [parse_duration_ms(part) for part in value.split(",") if part.strip()]
        if not delays:
            raise ValueError("at least one retry delay is needed")
        if delays != sorted(delays):
            raise ValueError("retry delays must be given shortest first")
        return value

    @field_validator("stack_components")
    @classmethod
    def _check_components(cls, value: str) -> str:
        unknown = {c.strip() for c in value.split(",") if c.strip()} - set(
            STACK_COMPONENTS
        )
        if unknown:
            raise ValueError(f"unknown stack components: {sorted(unknown)}")
        return value

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("log_format must be `text` or `json`")
        return value

    @property
    def retry_tiers(self) -> list[tuple[str, int]]:
        """The retry tiers as (label, delay in milliseconds), shortest first."""
        labels = [part.strip() for part in self.retry_delays.split(",") if part.strip()]
        return [(label, parse_duration_ms(label)) for label in labels]

    @property
    def managed_components(self) -> list[str]:
        """The stack components that `stack up` starts and `stack down` stops."""
        wanted = {c.strip() for c in self.stack_components.split(",") if c.strip()}
        return [c for c in STACK_COMPONENTS if c in wanted]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
