"""Mapping aiomqtt and socket exceptions to outcomes, in one place.

=========================================  =========  ==================
failure                                    decision   reason
=========================================  =========  ==================
connection refused, reset, not connected,  retryable  broker_unavailable
or closed before the broker acknowledged
CONNACK 3 (server unavailable)             retryable  broker_unavailable
no PUBACK/PUBCOMP, operation timed out     retryable  not_acknowledged
attempt deadline                           retryable  timeout
CONNACK refused for protocol, client id,   permanent  invalid_config
credentials, authorisation or a ban
certificate verification failed            permanent  invalid_config
=========================================  =========  ==================
"""

from __future__ import annotations

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from services.deliverer.outcome import Outcome, Reason
from services.deliverer.tls import certificate_failure

# CONNACK refusals no retry can fix: MQTT 3.1.1 return codes (section 3.2.2.3)
# and the MQTT 5 reason codes paho reports them as (section 3.2.2.2):
# malformed/protocol error, unsupported version, client id, bad credentials,
# not authorised, banned, bad authentication method. Server unavailable (3,
# 0x88), busy (0x89) and quota or rate limits are retryable.
PERMANENT_CONNACK = frozenset(
    {1, 2, 4, 5, 0x81, 0x82, 0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C}
)


def outcome_for(error: BaseException) -> Outcome:
    """The outcome of an attempt that raised ``error``."""
    problem = certificate_failure(error)
    if problem is not None:
        return Outcome.permanent(
            Reason.INVALID_CONFIG, f"TLS certificate verification failed: {problem}"
        )
    if isinstance(error, MqttConnectError):
        return _refused(error)
    if isinstance(error, aiomqtt.MqttCodeError):
        return Outcome.retryable(Reason.BROKER_UNAVAILABLE, str(error))
    if isinstance(error, aiomqtt.MqttError):
        return _library_error(error)
    if isinstance(error, TimeoutError):
        return Outcome.retryable(Reason.TIMEOUT, "attempt deadline passed")
    if isinstance(error, OSError):
        return Outcome.retryable(Reason.BROKER_UNAVAILABLE, _describe(error))
    return Outcome.retryable(Reason.INTERNAL_ERROR, _describe(error))


def _refused(error: MqttConnectError) -> Outcome:
    code = getattr(error.rc, "value", error.rc)
    if code in PERMANENT_CONNACK:
        return Outcome.permanent(Reason.INVALID_CONFIG, str(error))
    return Outcome.retryable(Reason.BROKER_UNAVAILABLE, str(error))


def _library_error(error: aiomqtt.MqttError) -> Outcome:
    # aiomqtt raises a bare MqttError for socket errors while connecting and
    # for a wait (CONNACK, PUBACK) that ran past its timeout.
    text = str(error) or type(error).__name__
    if "timed out" in text:
        return Outcome.retryable(Reason.NOT_ACKNOWLEDGED, text)
    return Outcome.retryable(Reason.BROKER_UNAVAILABLE, text)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
