"""Delivers alert events to PagerDuty's Events API v2."""

from __future__ import annotations

from typing import Any

import httpx

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.pagerduty.event import build_event
from services.deliverer.http_post import JsonPoster, json_bytes, response_text
from services.deliverer.outcome import Outcome, Reason, classify_http
from services.deliverer.templates import TemplateError, alert_context, render
from switchboard.settings import Settings


class Sender:
    """Enqueues trigger, acknowledge and resolve events for the channel's service."""

    def __init__(self, settings: Settings) -> None:
        self._poster = JsonPoster(settings)

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """Build the event for the command's alert, enqueue it, classify the answer."""
        alert = command["alert"]
        try:
            summary = _summary(command, channel)
        except TemplateError as error:
            return Outcome.permanent(Reason.TEMPLATE_ERROR, str(error))
        routing_key = channel.secrets.routing_key
        event = build_event(alert, routing_key, summary, channel.config)

        return await self._poster.post(
            str(channel.config.events_url),
            json_bytes(event),
            channel.config.timeout_s,
            classify_response,
            secrets=(routing_key,),
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._poster.close()


def _summary(command: dict[str, Any], channel: ResolvedChannel) -> str:
    if not channel.config.template:
        return command["alert"]["summary"]
    return render(channel.config.template, alert_context(command, channel.name))


def classify_response(response: httpx.Response) -> Outcome:
    """202 is success; a 400 names what PagerDuty refused, which is kept."""
    body = _error_text(response)
    if response.status_code == 400:
        return Outcome.permanent(Reason.PAYLOAD_REJECTED, f"HTTP 400: {body}", 400)
    return classify_http(response.status_code, response.headers, body)


def _error_text(response: httpx.Response) -> str:
    """``status: message (errors…)`` from PagerDuty's error document."""
    try:
        document = response.json()
        text = f"{document['status']}: {document['message']}"
    except (ValueError, KeyError, TypeError):
        return response_text(response)
    errors = document.get("errors")
    if isinstance(errors, list) and errors:
        text += " (" + "; ".join(str(error) for error in errors) + ")"
    return text[:1000]
