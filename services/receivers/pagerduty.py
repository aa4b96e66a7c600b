"""A local PagerDuty Events API v2 endpoint (``POST /v2/enqueue``).

It checks events the way PagerDuty documents them
(https://developer.pagerduty.com/docs/events-api-v2/overview/): JSON only, at
most 512 KB, a 32-character routing key of a known integration, an
``event_action`` of trigger, acknowledge or resolve, a trigger's payload with
summary (at most 1,024 characters), severity and source, a ``dedup_key`` of
at most 255 characters that acknowledge and resolve must carry. Given a
validator of the published OpenAPI body schema it also validates every event
with it. Answers are PagerDuty's: ``202`` with ``{"status": "success", …}``,
errors as ``{"status", "message", "errors"}``.

It keeps incidents by dedup key (:attr:`PagerDutyReceiver.incidents`), so a
test can see that acknowledge and resolve reached the incident trigger opened.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from services.receivers.vendor_http import (
    Reply,
    Request,
    VendorReceiver,
    serve_from_command_line,
)

ENQUEUE_PATH = "/v2/enqueue"
MAX_EVENT_BYTES = 512 * 1024
MAX_SUMMARY_CHARS = 1024
MAX_DEDUP_KEY_CHARS = 255
ROUTING_KEY_CHARS = 32
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})
INCIDENT_STATES = {
    "trigger": "triggered",
    "acknowledge": "acknowledged",
    "resolve": "resolved",
}

ERRORS = {
    400: ("invalid event", "Event object is invalid"),
    403: ("forbidden", "Access to this integration is forbidden"),
    404: ("not found", "The requested resource was not found"),
    413: ("request too large", "Request entity too large"),
    429: (
        "throttle event",
        "Requests for this service are arriving too quickly. Please retry later.",
    ),
    500: ("internal error", "An internal error occurred"),
    503: ("unavailable", "Service temporarily unavailable"),
}


class EventError(Exception):
    """An event PagerDuty would refuse; ``errors`` are PagerDuty's messages."""

    def __init__(self, *errors: str, unrecognized: bool = False) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)
        self.status, self.message = (
            ("Unrecognized object", "Event object format is unrecognized")
            if unrecognized
            else ("invalid event", "Event object is invalid")
        )


def error_body(
    status: str, message: str, errors: list[str] | None = None
) -> dict[str, Any]:
    """PagerDuty's error document."""
    body: dict[str, Any] = {"status": status, "message": message}
    if errors:
        body["errors"] = errors
    return body


class PagerDutyReceiver(VendorReceiver):
    """An Events API v2 endpoint that checks events and answers like PagerDuty."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        event_validator: Any = None,
        secret: str | None = None,
    ) -> None:
        """Listen on ``host:port``; ``secret`` fixes the routing key it accepts."""
        super().__init__(host, port)
        self.routing_key = secret or secrets.token_hex(ROUTING_KEY_CHARS // 2)
        self.incidents: dict[str, str] = {}
        self._validator = event_validator

    @property
    def events_url(self) -> str:
        """The enqueue URL a channel is configured with."""
        return self.base_url + ENQUEUE_PATH

    def describe(self) -> str:
        """The enqueue URL and the routing key it accepts."""
        return f"{self.events_url} routing_key={self.routing_key}"

    def error_reply(self, status: int) -> Reply:
        """PagerDuty's error document for ``status``."""
        name, message = ERRORS.get(status, ("error", "An error occurred"))
        headers = {"Retry-After": "1"} if status == 429 else {}
        return Reply.json(status, error_body(name, message), headers)

    def handle(self, request: Request) -> Reply:
        """Accept a valid event for the known routing key; refuse others."""
        if request.path != ENQUEUE_PATH:
            return self.error_reply(404)
        if request.method != "POST":
            return Reply.json(405, error_body("method not allowed", "Use POST"))
        try:
            event = self._parse(request)
            self._check(event)
        except EventError as error:
            body = error_body(error.status, error.message, error.errors)
            return Reply.json(400, body)
        return Reply.json(202, self._apply(event))

    def _parse(self, request: Request) -> dict[str, Any]:
        if len(request.body) > MAX_EVENT_BYTES:
            raise EventError("Event object exceeds the maximum size of 512 KB")
        if request.content_type != "application/json":
            raise EventError("JSON parse error", unrecognized=True)
        try:
            event = request.json()
        except ValueError:
            raise EventError("JSON parse error", unrecognized=True) from None
        if not isinstance(event, dict):
            raise EventError("JSON parse error", unrecognized=True)
        return event

    def _check(self, event: dict[str, Any]) -> None:
        if self._validator is not None:
            problems = [error.message for error in self._validator.iter_errors(event)]
            if problems:
                raise EventError(*problems)
        check_event(event)
        if event["routing_key"] != self.routing_key:
            raise EventError("Invalid routing key")

    def _apply(self, event: dict[str, Any]) -> dict[str, Any]:
        action = event["event_action"]
        key = event.get("dedup_key") or uuid.uuid4().hex
        if action == "trigger" or key in self.incidents:
            self.incidents[key] = INCIDENT_STATES[action]
        self._accept(event)
        return {"status": "success", "message": "Event processed", "dedup_key": key}


def check_event(event: dict[str, Any]) -> None:
    """Raise :class:`EventError` where PagerDuty would refuse ``event``."""
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != ROUTING_KEY_CHARS:
        raise EventError(
            "Length of 'routing_key' is incorrect (should be 32 characters)"
        )
    action = event.get("event_action")
    if action not in ACTIONS:
        raise EventError(
            "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"
        )
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (
        not isinstance(dedup_key, str) or len(dedup_key) > MAX_DEDUP_KEY_CHARS
    ):
        raise EventError("'dedup_key' must be a string of at most 255 characters")
    if action == "trigger":
        _check_payload(event.get("payload"))
    elif not dedup_key:
        raise EventError("'dedup_key' is missing or blank")


def _check_payload(payload: Any) -> None:
    if not isinstance(payload, dict):
        raise EventError("'payload' is missing or not an object")
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise EventError("'payload.summary' is missing or blank")
    if len(summary) > MAX_SUMMARY_CHARS:
        raise EventError("'payload.summary' is longer than 1024 characters")
    if payload.get("severity") not in SEVERITIES:
        raise EventError(
            "'payload.severity' is invalid "
            "(must be one of: critical, error, warning, info)"
        )
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        raise EventError("'payload.source' is missing or blank")


if __name__ == "__main__":
    serve_from_command_line(PagerDutyReceiver)
