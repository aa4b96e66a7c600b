"""Configuration of the MQTT channel."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.deliverer import templates
from services.deliverer.channels.base import (
    ChannelConfigBase,
    ChannelSecretsBase,
    TargetHost,
)
from services.deliverer.channels.mqtt.message import TopicError, render_topic
from services.deliverer.tls import check_certificate


class Config(ChannelConfigBase):
    """Broker address, TLS, credentials and what to publish where.

    QoS 0 counts as delivered once the message is written to the connection;
    QoS 1 and 2 only when the broker acknowledged it (PUBACK, PUBCOMP).
    """

    host: TargetHost
    port: int = Field(1883, ge=1, le=65535)
    tls: bool = False
    verify_certificate: bool = True
    ca_certificate_pem: str | None = Field(
        None,
        max_length=100_000,
        description="PEM of a CA to trust in addition to the system's.",
    )
    username: str | None = Field(None, max_length=255)
    topic_template: str = Field(
        "switchboard/{{ tenant_id }}/{{ severity | lower }}",
        max_length=1000,
        description=(
            "Jinja2 template of the topic to publish to. Substituted values have "
            "/, + and # replaced by _, so alert fields cannot add levels or wildcards."
        ),
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
        templates.check(value)
        try:
            render_topic(value, templates.sample_context())
        except (TopicError, templates.TemplateError) as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("ca_certificate_pem")
    @classmethod
    def _check_ca(cls, value: str | None) -> str | None:
        return None if value is None else check_certificate(value)

    @model_validator(mode="after")
    def _check_tls(self) -> Config:
        if self.ca_certificate_pem and not self.tls:
            raise ValueError("ca_certificate_pem needs tls")
        return self

    def secret_problems(self, secrets: Secrets) -> list[tuple[str, str]]:
        """(field, problem) for secrets that do not fit this configuration."""
        if secrets.password and not self.username:
            return [("config.username", "secrets.password is set; give its username")]
        return []


class Secrets(ChannelSecretsBase):
    """The broker password (used only together with ``Config.username``)."""

    password: str | None = Field(None, max_length=1000)
