"""A local Teams Workflows webhook (``POST /workflows/<id>/triggers/manual/…``).

It checks what a Workflows "post to a channel when a webhook request is
received" flow needs: a JSON ``message`` with Adaptive Card attachments of
content type ``application/vnd.microsoft.card.adaptive`` (``contentUrl``
present and null), a card of type ``AdaptiveCard`` at version 1.4 or below,
and a body within Teams' message size (about 28 KB). Given a validator of the
published Adaptive Card schema (``jsonschema.Draft6Validator``) it also
validates every card with it. Answers are
Workflows': ``202`` with an empty body, errors as ``{"error": {code, message}}``.

Teams itself checks the size and the card after the flow has accepted the
request; this receiver refuses such requests at once, so a test sees them.
"""

from __future__ import annotations

import secrets
from typing import Any

from services.receivers.vendor_http import (
    Reply,
    Request,
    VendorReceiver,
    serve_from_command_line,
)

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_MESSAGE_BYTES = 28 * 1024
SUPPORTED_CARD_VERSIONS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"})
API_VERSION = "2016-06-01"

ERRORS = {
    400: (
        "TriggerInputSchemaMismatch",
        "The input body for trigger 'manual' did not match its schema definition.",
    ),
    401: (
        "DirectApiInvalidAuthorizationSignature",
        "The provided authorization signature is not valid.",
    ),
    403: (
        "AuthorizationFailed",
        "The client does not have authorization to perform this action.",
    ),
    404: ("WorkflowNotFound", "The workflow could not be found."),
    413: (
        "RequestEntityTooLarge",
        "The request body is larger than a Teams message may be (about 28 KB).",
    ),
    429: (
        "WorkflowRequestsThrottled",
        "The workflow's requests are being throttled. Retry later.",
    ),
    500: ("InternalServerError", "Encountered an internal server error."),
    502: ("BadGateway", "The service is temporarily unavailable."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
}


class CardError(Exception):
    """A message the flow or Teams would refuse; the text says why."""


def error_body(code: str, message: str) -> dict[str, Any]:
    """Workflows' error document."""
    return {"error": {"code": code, "message": message}}


class TeamsReceiver(VendorReceiver):
    """A Teams Workflows webhook that checks messages and answers like Workflows."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        card_validator: Any = None,
        secret: str | None = None,
    ) -> None:
        """Listen on ``host:port``; ``secret`` fixes the URL's signature."""
        super().__init__(host, port)
        self.workflow_id = "0" * 32 if secret else secrets.token_hex(16)
        self.signature = secret or secrets.token_urlsafe(32)
        self.path = f"/workflows/{self.workflow_id}/triggers/manual/paths/invoke"
        self._validator = card_validator

    @property
    def webhook_url(self) -> str:
        """The secret URL a channel is configured with."""
        query = f"api-version={API_VERSION}&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
        return f"{self.base_url}{self.path}?{query}&sig={self.signature}"

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The cards of every accepted message, in order."""
        return [a["content"] for m in self.accepted for a in m["attachments"]]

    def describe(self) -> str:
        """The webhook URL."""
        return self.webhook_url

    def error_reply(self, status: int) -> Reply:
        """Workflows' error document for ``status``."""
        code, message = ERRORS.get(status, ("Error", "The request failed."))
        headers = {"Retry-After": "1"} if status == 429 else {}
        return Reply.json(status, error_body(code, message), headers)

    def handle(self, request: Request) -> Reply:
        """Accept a well-formed card message to the right URL; refuse others."""
        refused = self._check_address(request)
        if refused is not None:
            return refused
        if len(request.body) > MAX_MESSAGE_BYTES:
            return self.error_reply(413)
        try:
            message = _parse(request)
            check_message(message)
            for attachment in message["attachments"]:
                self._validate(attachment["content"])
        except CardError as error:
            return Reply.json(400, error_body("TriggerInputSchemaMismatch", str(error)))
        self._accept(message)
        return Reply(
            202, b"", "text/plain", {"x-ms-workflow-run-id": secrets.token_hex(8)}
        )

    def _check_address(self, request: Request) -> Reply | None:
        if request.path != self.path:
            return self.error_reply(404)
        if request.query.get("sig") != self.signature:
            return self.error_reply(401)
        if request.query.get("api-version") != API_VERSION:
            return Reply.json(
                400,
                error_body(
                    "InvalidApiVersionParameter",
                    "The api-version query parameter is not valid.",
                ),
            )
        if request.method != "POST":
            return Reply.json(
                405, error_body("MethodNotAllowed", "Only POST is allowed.")
            )
        return None

    def _validate(self, card: dict[str, Any]) -> None:
        if self._validator is None:
            return
        error = next(iter(self._validator.iter_errors(card)), None)
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path)
            raise CardError(
                f"card does not match the Adaptive Card schema at /{where}: "
                f"{error.message}"
            )


def _parse(request: Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise CardError("the request body must be application/json")
    try:
        message = request.json()
    except ValueError:
        raise CardError("the request body is not valid JSON") from None
    if not isinstance(message, dict):
        raise CardError("the request body must be a JSON object")
    return message


def check_message(message: dict[str, Any]) -> None:
    """Raise :class:`CardError` where the flow or Teams would refuse ``message``."""
    if message.get("type") != "message":
        raise CardError("'type' must be 'message'")
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        raise CardError("'attachments' must be a non-empty list")
    for attachment in attachments:
        _check_attachment(attachment)


def _check_attachment(attachment: Any) -> None:
    if not isinstance(attachment, dict):
        raise CardError("each attachment must be an object")
    if attachment.get("contentType") != ADAPTIVE_CARD_CONTENT_TYPE:
        raise CardError(f"'contentType' must be '{ADAPTIVE_CARD_CONTENT_TYPE}'")
    if "contentUrl" not in attachment or attachment["contentUrl"] is not None:
        raise CardError("'contentUrl' must be present and null")
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        raise CardError("'content' must be an AdaptiveCard")
    if card.get("version") not in SUPPORTED_CARD_VERSIONS:
        raise CardError("the card's 'version' is not one Teams renders")
    if not isinstance(card.get("body"), list) or not card["body"]:
        raise CardError("the card's 'body' must be a non-empty list")


if __name__ == "__main__":
    serve_from_command_line(TeamsReceiver)
