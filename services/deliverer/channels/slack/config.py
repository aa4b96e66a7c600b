"""Configuration of the Slack incoming-webhook channel."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from services.deliverer.channels.base import ChannelConfigBase, ChannelSecretsBase


class Config(ChannelConfigBase):
    """Optional message template; the webhook URL is a secret."""

    template: str | None = Field(
        None, max_length=4000, description="Jinja2 template for the message text."
    )


class Secrets(ChannelSecretsBase):
    """The incoming webhook URL, which embeds Slack's token."""

    webhook_url: AnyHttpUrl = Field(description="https://hooks.slack.com/services/…")
