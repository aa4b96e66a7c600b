"""Configuration of the PagerDuty Events API v2 channel."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from services.deliverer.channels.base import ChannelConfigBase, ChannelSecretsBase

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class Config(ChannelConfigBase):
    """Where events go and how they are labelled."""

    events_url: AnyHttpUrl = Field(
        AnyHttpUrl(PAGERDUTY_EVENTS_URL), description="Events API v2 enqueue URL."
    )
    component: str | None = Field(None, max_length=255)
    group: str | None = Field(None, max_length=255)
    event_class: str | None = Field(None, max_length=255)
    template: str | None = Field(
        None, max_length=4000, description="Jinja2 template for the summary."
    )


class Secrets(ChannelSecretsBase):
    """The integration's routing key."""

    routing_key: str = Field(min_length=32, max_length=32, pattern=r"^[A-Za-z0-9]+$")
