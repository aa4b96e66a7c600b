"""Retry decisions of the e-mail sender, against a real server and per exception."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiosmtplib
import pytest
from pydantic import ValidationError

from services.deliverer.channels.email import classify
from services.deliverer.channels.email.config import Config
from services.deliverer.channels.email.sender import (
    MAX_CONNECTIONS_PER_SERVER,
    Sender,
)
from services.deliverer.outcome import OutcomeKind, Reason
from services.receivers.smtp import free_tcp_port
from switchboard.settings import Settings
from tests.deliverer.channels.vendor_channels import private_hosts

RETRYABLE, PERMANENT, DELIVERED = (
    OutcomeKind.RETRYABLE,
    OutcomeKind.PERMANENT,
    OutcomeKind.DELIVERED,
)


@pytest.mark.parametrize(
    ("reply", "kind", "reason", "code"),
    [
        ("451 4.3.0 Try again later", RETRYABLE, Reason.SMTP_4XX, 451),
        ("452 4.3.1 Insufficient storage", RETRYABLE, Reason.SMTP_4XX, 452),
        ("554 5.7.1 Message rejected as spam", PERMANENT, Reason.SMTP_5XX, 554),
        ("552 5.3.4 Message too big", PERMANENT, Reason.SMTP_5XX, 552),
    ],
)
async def test_data_replies(
    smtp_server, sender, make_command, make_channel, reply, kind, reason, code
):
    smtp_server.handler.behaviour.data_reply = reply

    outcome = await sender.send(make_command(), make_channel(smtp_server.port))

    assert (outcome.kind, outcome.reason, outcome.status_code) == (kind, reason, code)
    assert reply.split(" ", 1)[1] in outcome.error


@pytest.mark.parametrize(
    ("reply", "kind", "reason"),
    [
        ("550 5.1.1 No such user", PERMANENT, Reason.RECIPIENT_REFUSED),
        ("450 4.2.1 Mailbox busy, try later", RETRYABLE, Reason.SMTP_4XX),
    ],
)
async def test_every_recipient_refused(
    smtp_server, sender, make_command, make_channel, reply, kind, reason
):
    smtp_server.handler.behaviour.rcpt_replies["noc@example.net"] = reply

    outcome = await sender.send(make_command(), make_channel(smtp_server.port))

    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert "noc@example.net" in outcome.error
    assert not smtp_server.messages


async def test_some_recipients_refused_still_delivers(
    smtp_server, sender, make_command, make_channel
):
    smtp_server.handler.behaviour.rcpt_replies["gone@example.org"] = "550 5.1.1 Gone"
    channel = make_channel(smtp_server.port, cc=["gone@example.org"])

    outcome = await sender.send(make_command(), channel)

    assert outcome.kind is DELIVERED
    assert "gone@example.org: 550" in outcome.error
    assert smtp_server.messages[0].rcpt_tos == ["noc@example.net"]


async def test_connection_dropped_during_data_is_retryable(
    smtp_server, sender, make_command, make_channel
):
    smtp_server.handler.behaviour.drop_during_data = True

    outcome = await sender.send(make_command(), make_channel(smtp_server.port))

    assert (outcome.kind, outcome.reason) == (RETRYABLE, Reason.CONNECTION_ERROR)


async def test_nothing_listening_is_retryable(sender, make_command, make_channel):
    outcome = await sender.send(make_command(), make_channel(free_tcp_port()))

    assert (outcome.kind, outcome.reason) == (RETRYABLE, Reason.CONNECTION_ERROR)


async def test_silent_server_hits_the_deadline(sender, make_command, make_channel):
    # Accepts the TCP connection but never sends a greeting.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        channel = make_channel(listener.getsockname()[1], timeout_s=0.5)
        outcome = await sender.send(make_command(), channel)

    assert (outcome.kind, outcome.reason) == (RETRYABLE, Reason.TIMEOUT)


async def test_connection_is_reused_and_reopened_after_server_closes_it(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port)

    await sender.send(make_command(), channel)
    await sender.send(make_command(), channel)
    reused = smtp_server.handler.session_count
    smtp_server.drop_connections()
    await asyncio.sleep(0.1)  # lets the client see the close (not a timing check)
    after_drop = await sender.send(make_command(), channel)

    assert reused == 1
    assert after_drop.kind is DELIVERED
    assert smtp_server.handler.session_count == 2
    assert [m.session_number for m in smtp_server.messages] == [0, 0, 1]


async def test_connection_closed_unnoticed_is_reopened(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port)
    await sender.send(make_command(), channel)

    # No pause: the client may not have seen the close yet, so NOOP finds it.
    smtp_server.drop_connections()
    outcome = await sender.send(make_command(), channel)

    assert outcome.kind is DELIVERED
    assert len(smtp_server.messages) == 2


async def test_failed_transaction_does_not_poison_the_next(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port)
    smtp_server.handler.behaviour.drop_during_data = True
    first = await sender.send(make_command(), channel)
    smtp_server.handler.behaviour.drop_during_data = False

    second = await sender.send(make_command(), channel)

    assert first.kind is RETRYABLE
    assert second.kind is DELIVERED


async def test_template_failing_at_send_is_permanent(
    smtp_server, sender, make_command, make_channel
):
    # Valid for the sample alert (it has details), fails on one without.
    channel = make_channel(smtp_server.port, subject_template="{{ details.upper() }}")

    outcome = await sender.send(make_command(details=None), channel)

    assert (outcome.kind, outcome.reason) == (PERMANENT, Reason.TEMPLATE_ERROR)


def _certificate_error() -> aiosmtplib.SMTPConnectError:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "unable to get local issuer certificate"
    error = aiosmtplib.SMTPConnectError("Error connecting to host")
    error.__cause__ = cause
    return error


def _refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(c, "no", f"r{c}@example.com") for c in codes]
    )


# Every exception aiosmtplib documents, and what the sender makes of it.
EXCEPTION_TABLE = [
    (aiosmtplib.SMTPServerDisconnected("gone"), RETRYABLE, Reason.CONNECTION_ERROR),
    (aiosmtplib.SMTPConnectError("refused"), RETRYABLE, Reason.CONNECTION_ERROR),
    (aiosmtplib.SMTPConnectTimeoutError("slow"), RETRYABLE, Reason.TIMEOUT),
    (aiosmtplib.SMTPReadTimeoutError("slow"), RETRYABLE, Reason.TIMEOUT),
    (aiosmtplib.SMTPTimeoutError("slow"), RETRYABLE, Reason.TIMEOUT),
    (TimeoutError(), RETRYABLE, Reason.TIMEOUT),
    (ConnectionResetError("reset"), RETRYABLE, Reason.CONNECTION_ERROR),
    (OSError("network unreachable"), RETRYABLE, Reason.CONNECTION_ERROR),
    (aiosmtplib.SMTPConnectResponseError(421, "busy"), RETRYABLE, Reason.SMTP_4XX),
    (aiosmtplib.SMTPConnectResponseError(554, "go away"), PERMANENT, Reason.SMTP_5XX),
    (aiosmtplib.SMTPHeloError(501, "bad helo"), PERMANENT, Reason.SMTP_5XX),
    (aiosmtplib.SMTPDataError(451, "later"), RETRYABLE, Reason.SMTP_4XX),
    (aiosmtplib.SMTPDataError(554, "spam"), PERMANENT, Reason.SMTP_5XX),
    (aiosmtplib.SMTPAuthenticationError(535, "bad"), PERMANENT, Reason.SMTP_5XX),
    (aiosmtplib.SMTPAuthenticationError(454, "later"), RETRYABLE, Reason.SMTP_4XX),
    (aiosmtplib.SMTPSenderRefused(553, "no", "a@b.c"), PERMANENT, Reason.SMTP_5XX),
    (aiosmtplib.SMTPRecipientRefused(550, "no", "a@b.c"), PERMANENT, Reason.SMTP_5XX),
    (aiosmtplib.SMTPResponseException(421, "closing"), RETRYABLE, Reason.SMTP_4XX),
    (_refused(550, 451), PERMANENT, Reason.RECIPIENT_REFUSED),
    (_refused(450, 451), RETRYABLE, Reason.SMTP_4XX),
    (aiosmtplib.SMTPNotSupported("no STARTTLS"), PERMANENT, Reason.INVALID_CONFIG),
    (aiosmtplib.SMTPException("no auth method"), PERMANENT, Reason.INVALID_CONFIG),
    (_certificate_error(), PERMANENT, Reason.INVALID_CONFIG),
    (ssl.SSLError("handshake failure"), RETRYABLE, Reason.CONNECTION_ERROR),
]


@pytest.mark.parametrize(("error", "kind", "reason"), EXCEPTION_TABLE)
def test_every_library_exception_is_mapped(error, kind, reason):
    outcome = classify.outcome_for(error)

    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert outcome.error


BASE = {"host": "mail.example.com", "from_address": "a@example.com", "to": ["b@x.org"]}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"to": ["jörg@example.com"]}, "must be ASCII"),
        ({"subject_template": "{{ summary "}, "template error"),
        ({"body_template": "{{ no_such_field }}"}, "no_such_field"),
        ({"html_template": "{% for x in %}"}, "template error"),
        ({"body_template": "{{ summary.__class__.__mro__ }}"}, "template error"),
        ({"subject_template": "{{ ''.__class__ }}"}, "template error"),
        ({"ca_certificate_pem": "not a cert", "security": "tls"}, "PEM"),
        ({"security": "smtps"}, "security"),
        ({"from_name": "Evil\r\nBcc: x@y.z"}, "one line"),
        ({"to": []}, "to"),
    ],
)
def test_bad_configuration_is_refused_when_saved(fields, problem):
    with pytest.raises(ValidationError) as raised:
        Config.model_validate({**BASE, **fields})

    assert problem in str(raised.value)


def test_international_domains_are_stored_as_idna():
    config = Config.model_validate({**BASE, "to": ["noc@bücher.example"]})

    assert config.to == ["noc@xn--bcher-kva.example"]


async def test_concurrent_sends_share_a_bounded_pool(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port)

    outcomes = await asyncio.gather(
        *(sender.send(make_command(), channel) for _ in range(12))
    )

    assert all(o.kind is DELIVERED for o in outcomes)
    assert len(smtp_server.messages) == 12
    assert 1 <= smtp_server.handler.session_count <= MAX_CONNECTIONS_PER_SERVER


@pytest.mark.parametrize("host", private_hosts())
async def test_a_private_host_is_refused_at_send_unless_allowed(
    smtp_server, sender, make_command, make_channel, host
):
    strict = Sender(Settings(allow_private_targets=False))
    try:
        outcome = await strict.send(
            make_command(), make_channel(smtp_server.port, host=host)
        )
    finally:
        await strict.close()
    allowed = await sender.send(make_command(), make_channel(smtp_server.port))

    assert (outcome.kind, outcome.reason) == (PERMANENT, Reason.INVALID_CONFIG)
    assert "private targets are not allowed" in outcome.error
    assert allowed.kind is DELIVERED
    assert len(smtp_server.messages) == 1
