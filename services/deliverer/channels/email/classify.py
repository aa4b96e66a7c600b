"""Mapping SMTP replies and aiosmtplib exceptions to outcomes, in one place.

=====================================  =========  ==================
failure                                decision   reason
=====================================  =========  ==================
4xx reply (any command)                retryable  smtp_4xx
5xx reply (any command)                permanent  smtp_5xx
every recipient refused with 5xx       permanent  recipient_refused
every recipient refused, all 4xx       retryable  smtp_4xx
timeout (connect, read, deadline)      retryable  timeout
connection refused, dropped, reset     retryable  connection_error
certificate verification failed        permanent  invalid_config
STARTTLS or AUTH not offered           permanent  invalid_config
=====================================  =========  ==================

Recipients refused while others were accepted do not fail the attempt: the
message went out, and sending it again would duplicate it for the others. The
refused addresses are kept in the outcome's error text.
"""

from __future__ import annotations

import aiosmtplib

from services.deliverer.outcome import Outcome, OutcomeKind, Reason
from services.deliverer.tls import certificate_failure

# The reply code of a successful end of DATA (RFC 5321 section 4.2.2).
SMTP_OK = 250


def outcome_for(error: BaseException) -> Outcome:
    """The outcome of an attempt that raised ``error``."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return _recipients_refused(error)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return outcome_for_reply(error.code, error.message)
    certificate_problem = certificate_failure(error)
    if certificate_problem is not None:
        detail = certificate_problem
        return Outcome.permanent(
            Reason.INVALID_CONFIG, f"TLS certificate verification failed: {detail}"
        )
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return Outcome.permanent(Reason.INVALID_CONFIG, str(error))
    if isinstance(error, TimeoutError):
        return Outcome.retryable(Reason.TIMEOUT, _describe(error) or "timed out")
    if isinstance(error, OSError):
        return Outcome.retryable(Reason.CONNECTION_ERROR, _describe(error))
    if isinstance(error, aiosmtplib.SMTPException):
        # The remaining library errors say the server lacks what the channel
        # asks for (e.g. no authentication method in common).
        return Outcome.permanent(Reason.INVALID_CONFIG, _describe(error))
    return Outcome.retryable(Reason.INTERNAL_ERROR, _describe(error))


def outcome_for_reply(code: int, message: str) -> Outcome:
    """The outcome of an SMTP error reply: 4xx transient, 5xx permanent."""
    text = f"SMTP {code}: {message}"
    if 400 <= code < 500:
        return Outcome.retryable(Reason.SMTP_4XX, text, code)
    if code >= 500:
        return Outcome.permanent(Reason.SMTP_5XX, text, code)
    return Outcome.retryable(Reason.CONNECTION_ERROR, f"unexpected reply {text}", code)


def delivered(refused: dict[str, aiosmtplib.SMTPResponse]) -> Outcome:
    """The outcome of an accepted message, naming recipients that were refused."""
    if not refused:
        return Outcome.delivered(SMTP_OK)
    listed = "; ".join(
        f"{address}: {reply.code} {reply.message}" for address, reply in refused.items()
    )
    return Outcome(
        OutcomeKind.DELIVERED,
        Reason.DELIVERED,
        SMTP_OK,
        f"refused recipients: {listed}",
    )


def _recipients_refused(error: aiosmtplib.SMTPRecipientsRefused) -> Outcome:
    codes = [refusal.code for refusal in error.recipients]
    listed = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
    if all(400 <= code < 500 for code in codes):
        return Outcome.retryable(
            Reason.SMTP_4XX, f"recipients deferred: {listed}", codes[0]
        )
    worst = max(codes, default=None)
    return Outcome.permanent(
        Reason.RECIPIENT_REFUSED, f"recipients refused: {listed}", worst
    )


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
