"""A local Slack incoming webhook (``POST /services/T…/B…/<token>``).

It checks what Slack documents for incoming webhooks and Block Kit
(https://api.slack.com/messaging/webhooks, .../reference/block-kit/blocks) and
answers as Slack does: ``200 ok`` as text, errors as a short text code with
the status Slack uses. Lengths are counted in UTF-16 code units, the stricter
of the two ways a service may count, so a message this accepts fits Slack.

:func:`displayed` reverses Slack's escaping, so a test can check that what a
person would read equals the alert text (escaped exactly once).
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

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_MESSAGE_TEXT = 40_000
TEXT_TYPES = frozenset({"mrkdwn", "plain_text"})

ERROR_CODES = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "channel_not_found",
    410: "channel_is_archived",
    413: "request_too_large",
    429: "rate_limited",
    500: "rollup_error",
    503: "service_unavailable",
}


class PayloadError(Exception):
    """A request Slack would refuse; the message is Slack's error code."""


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def displayed(mrkdwn: str) -> str:
    """What Slack shows for escaped mrkdwn text (entities decoded once)."""
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class SlackReceiver(VendorReceiver):
    """A Slack incoming webhook that checks requests and answers like Slack."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, secret: str | None = None
    ) -> None:
        """Listen on ``host:port``; ``secret`` fixes the URL's token (else random)."""
        super().__init__(host, port)
        self.token = secret or secrets.token_urlsafe(18)
        team, bot = secrets.token_hex(4).upper(), secrets.token_hex(4).upper()
        if secret:
            team, bot = "0DEMO", "0DEMO"
        self.path = f"/services/T{team}/B{bot}/{self.token}"

    @property
    def webhook_url(self) -> str:
        """The secret URL a channel is configured with."""
        return self.base_url + self.path

    def describe(self) -> str:
        """The webhook URL."""
        return self.webhook_url

    def error_reply(self, status: int) -> Reply:
        """Slack's text error code for ``status``."""
        headers = {"Retry-After": "1"} if status == 429 else {}
        return Reply.text(status, ERROR_CODES.get(status, "unknown_error"), headers)

    def handle(self, request: Request) -> Reply:
        """Accept a well-formed message to the right URL; refuse others like Slack."""
        if request.path != self.path:
            # The right workspace and webhook with a wrong token, or no such webhook.
            same_webhook = request.path.rsplit("/", 1)[0] == self.path.rsplit("/", 1)[0]
            return (
                Reply.text(403, "invalid_token")
                if same_webhook
                else Reply.text(404, "no_service")
            )
        if request.method != "POST":
            return Reply.text(405, "invalid_method")
        try:
            message = _parse(request)
            check_message(message)
        except PayloadError as error:
            return Reply.text(400, str(error))
        self._accept(message)
        return Reply(200, b"ok", "text/html")


def _parse(request: Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise PayloadError("invalid_payload")
    try:
        message = request.json()
    except ValueError:
        raise PayloadError("invalid_payload") from None
    if not isinstance(message, dict):
        raise PayloadError("invalid_payload")
    return message


def check_message(message: dict[str, Any]) -> None:
    """Raise :class:`PayloadError` where Slack would refuse ``message``."""
    text, blocks = message.get("text"), message.get("blocks")
    if not text and not blocks:
        raise PayloadError("no_text")
    if text is not None and (
        not isinstance(text, str) or utf16_units(text) > MAX_MESSAGE_TEXT
    ):
        raise PayloadError(
            "msg_too_long" if isinstance(text, str) else "invalid_payload"
        )
    if blocks is not None:
        _check_blocks(blocks)


def _check_blocks(blocks: Any) -> None:
    if not isinstance(blocks, list) or not 0 < len(blocks) <= MAX_BLOCKS:
        raise PayloadError("invalid_blocks")
    for block in blocks:
        checker = _BLOCK_CHECKS.get(
            block.get("type") if isinstance(block, dict) else None
        )
        if checker is None:
            raise PayloadError("invalid_blocks")
        checker(block)


def _check_text(obj: Any, limit: int, types: frozenset[str] = TEXT_TYPES) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in types:
        raise PayloadError("invalid_blocks")
    text = obj.get("text")
    if not isinstance(text, str) or not text or utf16_units(text) > limit:
        raise PayloadError("invalid_blocks")


def _check_header(block: dict[str, Any]) -> None:
    _check_text(block.get("text"), MAX_HEADER_TEXT, frozenset({"plain_text"}))


def _check_section(block: dict[str, Any]) -> None:
    if "text" not in block and "fields" not in block:
        raise PayloadError("invalid_blocks")
    if "text" in block:
        _check_text(block["text"], MAX_SECTION_TEXT)
    fields = block.get("fields", [])
    if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
        raise PayloadError("invalid_blocks")
    for item in fields:
        _check_text(item, MAX_FIELD_TEXT)


def _check_context(block: dict[str, Any]) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
        raise PayloadError("invalid_blocks")
    for element in elements:
        _check_text(element, MAX_SECTION_TEXT)


def _check_divider(block: dict[str, Any]) -> None:
    if set(block) - {"type", "block_id"}:
        raise PayloadError("invalid_blocks")


_BLOCK_CHECKS = {
    "header": _check_header,
    "section": _check_section,
    "context": _check_context,
    "divider": _check_divider,
}


if __name__ == "__main__":
    serve_from_command_line(SlackReceiver)
