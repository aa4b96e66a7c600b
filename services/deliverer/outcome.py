"""The closed set of outcomes a sender returns, and the shared HTTP classifier.

Senders never retry, sleep or log failures: they return an :class:`Outcome` and
the deliverer decides what happens next (retry tier, dead letter, delivered).
The reason is one of :class:`Reason`, small enough to be a metric label.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# Kept in the attempt log; enough to see a vendor's error message.
MAX_ERROR_CHARS = 2000


class OutcomeKind(StrEnum):
    """What the deliverer does with an attempt."""

    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


class Reason(StrEnum):
    """Why an attempt ended as it did; a closed set used as a metric label."""

    DELIVERED = "delivered"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    HTTP_5XX = "http_5xx"
    HTTP_429 = "http_429"
    HTTP_RETRYABLE_4XX = "http_retryable_4xx"
    HTTP_4XX = "http_4xx"
    HTTP_REDIRECT = "http_redirect"
    SMTP_4XX = "smtp_4xx"
    SMTP_5XX = "smtp_5xx"
    RECIPIENT_REFUSED = "recipient_refused"
    BROKER_UNAVAILABLE = "broker_unavailable"
    NOT_ACKNOWLEDGED = "not_acknowledged"
    INVALID_CONFIG = "invalid_config"
    SECRETS_UNREADABLE = "secrets_unreadable"
    PAYLOAD_REJECTED = "payload_rejected"
    TEMPLATE_ERROR = "template_error"
    CHANNEL_GONE = "channel_gone"
    CHANNEL_DISABLED = "channel_disabled"
    MAX_ATTEMPTS = "max_attempts"
    UNDECODABLE = "undecodable"
    WRONG_CHANNEL_TYPE = "wrong_channel_type"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt."""

    kind: OutcomeKind
    reason: Reason
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None

    @classmethod
    def delivered(cls, status_code: int | None = None) -> Outcome:
        """The target accepted the notification."""
        return cls(OutcomeKind.DELIVERED, Reason.DELIVERED, status_code)

    @classmethod
    def retryable(
        cls,
        reason: Reason,
        error: str | None = None,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> Outcome:
        """A failure that may succeed later, optionally not before ``retry_after_s``."""
        return cls(
            OutcomeKind.RETRYABLE, reason, status_code, _bounded(error), retry_after_s
        )

    @classmethod
    def permanent(
        cls, reason: Reason, error: str | None = None, status_code: int | None = None
    ) -> Outcome:
        """A failure that will not succeed by trying again."""
        return cls(OutcomeKind.PERMANENT, reason, status_code, _bounded(error))


def _bounded(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 1] + "…"


# A week, beyond any sensible retry tier: bounds what a target can ask for (a
# 400-digit Retry-After would otherwise be an infinite float).
MAX_RETRY_AFTER_S = 7 * 24 * 3600.0


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date).

    At most :data:`MAX_RETRY_AFTER_S`; None when the value is neither form.
    """
    if not value:
        return None
    value = value.strip()
    # ASCII only: str.isdigit() also accepts characters float() refuses ("²").
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    now_s = time.time() if now_s is None else now_s
    return min(max(0.0, math.ceil(when.timestamp() - now_s)), MAX_RETRY_AFTER_S)


RETRYABLE_4XX = frozenset({408, 425})


def classify_http(
    status_code: int, headers: Mapping[str, str] | None = None, body: str = ""
) -> Outcome:
    """Classify an HTTP response the same way for every HTTP channel.

    2xx delivered; 429 and 5xx retryable (honouring Retry-After); 408 and 425
    retryable; 3xx and other 4xx permanent, with the body kept as the error.
    """
    headers = headers or {}
    error = f"HTTP {status_code}: {body}" if body else f"HTTP {status_code}"
    if 200 <= status_code < 300:
        return Outcome.delivered(status_code)
    retry_after = parse_retry_after(
        headers.get("retry-after") or headers.get("Retry-After")
    )
    if status_code == 429:
        return Outcome.retryable(Reason.HTTP_429, error, status_code, retry_after)
    if status_code >= 500:
        return Outcome.retryable(Reason.HTTP_5XX, error, status_code, retry_after)
    if status_code in RETRYABLE_4XX:
        return Outcome.retryable(
            Reason.HTTP_RETRYABLE_4XX, error, status_code, retry_after
        )
    if 300 <= status_code < 400:
        location = headers.get("location") or headers.get("Location") or "(none)"
        return Outcome.permanent(
            Reason.HTTP_REDIRECT,
            f"HTTP {status_code} redirect to {location}",
            status_code,
        )
    return Outcome.permanent(Reason.HTTP_4XX, error, status_code)
