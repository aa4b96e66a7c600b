"""Configuration of the PagerDuty Events API v2 channel."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator

from services.deliverer import templates
from services.deliverer.channels.base import (
    ChannelConfigBase,
    ChannelSecretsBase,
    TargetUrl,
)

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class Config(ChannelConfigBase):
    """Where events go and how they are labelled."""

    events_url: TargetUrl = Field(
        AnyHttpUrl(PAGERDUTY_EVENTS_URL), description="Events API v2 enqueue URL."
    )
    component: str | None = Field(None, max_length=255)
    group: str | None = Field(None, max_length=255)
    event_class: str | None = Field(None, max_length=255)
    template: str | None = Field(
        None, max_length=4000, description="Jinja2 template for the summary."
    )

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        # Refuse a broken template when the channel is saved, not at 3 a.m.
        return None if value is None else templates.check(value)


class Secrets(ChannelSecretsBase):
    """The integration's routing key."""

    routing_key: str = Field(min_length=32, max_length=32, pattern=r"^[A-Za-z0-9]+$")
