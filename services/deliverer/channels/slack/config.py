"""Configuration of the Slack incoming-webhook channel."""

from __future__ import annotations

from pydantic import Field, field_validator

from services.deliverer import templates
from services.deliverer.channels.base import (
    ChannelConfigBase,
    ChannelSecretsBase,
    TargetUrl,
)


class Config(ChannelConfigBase):
    """Optional message template; the webhook URL is a secret."""

    template: str | None = Field(
        None, max_length=4000, description="Jinja2 template for the message text."
    )

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        # Refuse a broken template when the channel is saved, not at 3 a.m.
        return None if value is None else templates.check(value)


class Secrets(ChannelSecretsBase):
    """The incoming webhook URL, which embeds Slack's token."""

    webhook_url: TargetUrl = Field(description="https://hooks.slack.com/services/…")
