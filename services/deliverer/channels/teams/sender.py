"""Delivers alert events to a Microsoft Teams Workflows webhook."""

from __future__ import annotations

from typing import Any

import httpx

from services.deliverer.alert_view import alert_view
from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.teams.card import build_message
from services.deliverer.http_post import JsonPoster, json_bytes, response_text
from services.deliverer.outcome import Outcome, Reason, classify_http
from services.deliverer.templates import TemplateError
from switchboard.settings import Settings

# Workflows answers these when the request itself is wrong: the trigger's
# schema refused the body, or the body is too large.
PAYLOAD_STATUSES = frozenset({400, 413})


class Sender:
    """Posts an Adaptive Card message to the channel's Workflows URL."""

    def __init__(self, settings: Settings) -> None:
        self._poster = JsonPoster(settings)

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """Build the card for the command's alert, post it, classify the answer."""
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
    """Workflows answers 202 (or 200), and errors as ``{"error": {code, message}}``."""
    body = _error_text(response)
    if response.status_code in PAYLOAD_STATUSES:
        error = f"HTTP {response.status_code}: {body}"
        return Outcome.permanent(Reason.PAYLOAD_REJECTED, error, response.status_code)
    return classify_http(response.status_code, response.headers, body)


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"[:1000]
    except (ValueError, KeyError, TypeError):
        return response_text(response)
