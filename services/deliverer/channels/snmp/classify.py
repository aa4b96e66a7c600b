"""Mapping pysnmp results and exceptions to outcomes, in one place.

A trap is unacknowledged: once pysnmp has handed the datagram to the socket
it counts as delivered. An INFORM counts only when the receiver answered.

=========================================  =========  ==================
failure                                    decision   reason
=========================================  =========  ==================
INFORM not answered (RequestTimedOut)      retryable  not_acknowledged
not in time window, engine id discovery    retryable  not_acknowledged
receiver reports unknown user, wrong       permanent  invalid_config
digest, decryption error, unsupported
security level
response PDU with an error status          permanent  payload_rejected
other engine errors (serialisation …)      permanent  payload_rejected
name resolution, socket errors             retryable  connection_error
attempt deadline                           retryable  timeout
pysnmp configuration errors                permanent  invalid_config
value does not fit its declared type       permanent  invalid_config
=========================================  =========  ==================
"""

from __future__ import annotations

from pyasn1.error import PyAsn1Error
from pysnmp.error import PySnmpError
from pysnmp.proto import errind

from services.deliverer.outcome import Outcome, Reason

# Indications a receiver's USM report gives for credentials that will never work.
_CREDENTIAL_INDICATIONS = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.DecryptionError,
    errind.UnsupportedSecurityLevel,
    errind.UnknownSecurityName,
    errind.AuthenticationFailure,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
    errind.UnknownCommunityName,
)

# Indications of a lost or not-yet-synchronised exchange; trying again helps.
_TRANSIENT_INDICATIONS = (
    errind.RequestTimedOut,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
    errind.EngineIDMismatch,
)


def outcome_for_result(indication: object, status: object) -> Outcome:
    """The outcome of ``send_notification``'s (errorIndication, errorStatus)."""
    if indication:
        return outcome_for_indication(indication)
    if status and int(status) != 0:
        return Outcome.permanent(
            Reason.PAYLOAD_REJECTED, f"receiver answered with error status {status}"
        )
    return Outcome.delivered()


def outcome_for_indication(indication: object) -> Outcome:
    """The outcome of a pysnmp error indication."""
    text = f"{type(indication).__name__}: {indication}"
    if isinstance(indication, _TRANSIENT_INDICATIONS):
        return Outcome.retryable(Reason.NOT_ACKNOWLEDGED, text)
    if isinstance(indication, _CREDENTIAL_INDICATIONS):
        return Outcome.permanent(Reason.INVALID_CONFIG, text)
    if isinstance(indication, errind.ErrorIndication):
        return Outcome.permanent(Reason.PAYLOAD_REJECTED, text)
    # pysnmp may also give a plain string.
    return Outcome.retryable(Reason.CONNECTION_ERROR, str(indication))


def outcome_for(error: BaseException) -> Outcome:
    """The outcome of an attempt that raised ``error``."""
    if isinstance(error, errind.ErrorIndication):
        return outcome_for_indication(error)
    if isinstance(error, TimeoutError):
        return Outcome.retryable(Reason.TIMEOUT, "attempt deadline passed")
    if isinstance(error, OSError):
        return Outcome.retryable(Reason.CONNECTION_ERROR, _describe(error))
    if isinstance(error, PyAsn1Error):
        return Outcome.permanent(Reason.INVALID_CONFIG, _describe(error))
    if isinstance(error, PySnmpError):
        return _pysnmp_error(error)
    return Outcome.retryable(Reason.INTERNAL_ERROR, _describe(error))


def _pysnmp_error(error: PySnmpError) -> Outcome:
    # Resolving the target's name is the one transient case pysnmp raises for.
    text = _describe(error)
    if "address" in text.lower() or isinstance(error.__cause__, OSError):
        return Outcome.retryable(Reason.CONNECTION_ERROR, text)
    return Outcome.permanent(Reason.INVALID_CONFIG, text)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
