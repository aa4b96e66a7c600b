"""Configuration of the Microsoft Teams Workflows webhook channel."""

from __future__ import annotations

from pydantic import Field, field_validator

from services.deliverer import templates
from services.deliverer.channels.base import (
    ChannelConfigBase,
    ChannelSecretsBase,
    TargetUrl,
)


class Config(ChannelConfigBase):
    """Optional message template; the workflow URL is a secret."""

    template: str | None = Field(
        None, max_length=4000, description="Jinja2 template for the card's text."
    )

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        # Refuse a broken template when the channel is saved, not at 3 a.m.
        return None if value is None else templates.check(value)


class Secrets(ChannelSecretsBase):
    """The Workflows webhook URL, which embeds a signature."""

    webhook_url: TargetUrl = Field(description="The Workflows trigger URL.")
