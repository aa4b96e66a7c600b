"""Configuration of the Microsoft Teams Workflows webhook channel."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from services.deliverer.channels.base import ChannelConfigBase, ChannelSecretsBase


class Config(ChannelConfigBase):
    """Optional message template; the workflow URL is a secret."""

    template: str | None = Field(
        None, max_length=4000, description="Jinja2 template for the card's text."
    )


class Secrets(ChannelSecretsBase):
    """The Workflows webhook URL, which embeds a signature."""

    webhook_url: AnyHttpUrl = Field(description="The Workflows trigger URL.")
