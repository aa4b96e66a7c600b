"""Delivers alert events to a Slack incoming webhook."""

from __future__ import annotations

from typing import Any

import httpx

from services.deliverer.alert_view import alert_view
from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.slack.message import build_message
from services.deliverer.http_post import JsonPoster, json_bytes, response_text
from services.deliverer.outcome import Outcome, Reason, classify_http
from services.deliverer.templates import TemplateError
from switchboard.settings import Settings

# Slack's 400 answers that name a problem with the message itself, from
# https://api.slack.com/messaging/webhooks#handling_errors; other 400s name
# the webhook or the channel.
PAYLOAD_ERRORS = frozenset(
    {
        "invalid_payload",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "no_text",
        "too_many_attachments",
        "msg_too_long",
        "invalid_arguments",
    }
)


class Sender:
    """Posts a Block Kit message to the channel's incoming webhook URL."""

    def __init__(self, settings: Settings) -> None:
        self._poster = JsonPoster(settings)

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """Build the message for the command's alert, post it, classify the answer."""
        alert = command["alert"]
        try:
            view = alert_view(command, channel.config.template, channel.name)
        except TemplateError as error:
            return Outcome.permanent(Reason.TEMPLATE_ERROR, str(error))
        message = build_message(view, str(alert["severity"]), str(alert["kind"]))

        return await self._poster.post(
            str(channel.secrets.webhook_url),
            json_bytes(message),
            channel.config.timeout_s,
            classify_response,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._poster.close()


def classify_response(response: httpx.Response) -> Outcome:
    """Slack answers ``ok`` with 200, and errors as a short plain-text code."""
    body = response_text(response)
    if response.status_code == 400 and body in PAYLOAD_ERRORS:
        return Outcome.permanent(Reason.PAYLOAD_REJECTED, f"HTTP 400: {body}", 400)
    return classify_http(response.status_code, response.headers, body)
