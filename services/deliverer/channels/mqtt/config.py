"""Configuration of the MQTT channel."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from services.deliverer.channels.base import ChannelConfigBase, ChannelSecretsBase


class Config(ChannelConfigBase):
    """Broker address, TLS, credentials and what to publish where."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(1883, ge=1, le=65535)
    tls: bool = False
    username: str | None = Field(None, max_length=255)
    topic_template: str = Field(
        "switchboard/{{ tenant_id }}/{{ severity }}",
        max_length=1000,
        description="Jinja2 template of the topic to publish to.",
    )
    qos: Literal[0, 1, 2] = 1
    retain: bool = False

    @field_validator("topic_template")
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if "#" in value or "+" in value:
            raise ValueError("a publish topic must not contain the wildcards # or +")
        if "\x00" in value:
            raise ValueError("a topic must not contain NUL")
        return value


class Secrets(ChannelSecretsBase):
    """The broker password."""

    password: str | None = Field(None, max_length=1000)
