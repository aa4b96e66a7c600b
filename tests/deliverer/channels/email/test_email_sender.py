"""The e-mail sender against a real aiosmtpd server: bytes on the wire, TLS, auth."""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage

from services.deliverer.channels.email.message import message_id_for
from services.deliverer.outcome import OutcomeKind, Reason
from services.receivers.smtp import SmtpReceiver

# RFC 5321 section 4.5.3.1.6: 998 characters plus CRLF; we fold at RFC 5322's 78.
SMTP_LINE_LIMIT = 998
FOLDED_LINE_LIMIT = 78

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-smtp-Pässword"


def client_side_logs(caplog) -> str:
    """Everything logged except by the test's SMTP server (aiosmtpd's mail.log)."""
    return "\n".join(
        f"{record.getMessage()} {record.__dict__}"
        for record in caplog.records
        if not record.name.startswith("mail.log")
    )


def parse(data: bytes) -> EmailMessage:
    """The received bytes as a message with decoded headers."""
    return email.message_from_bytes(data, policy=email.policy.default)


async def test_message_is_ascii_with_decodable_unicode(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(
        smtp_server.port,
        from_name="Zoë Ålert «NOC» 監視",
        cc=["oncall@example.org"],
        subject_template="{{ severity }} – {{ summary }}",
    )
    summary = "Überhitzung im Rechenzentrum 東京 🔥"
    command = make_command(summary=summary)

    outcome = await sender.send(command, channel)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    (received,) = smtp_server.messages
    assert received.data.isascii()
    assert received.mail_from == "alerts@example.com"
    assert received.rcpt_tos == ["noc@example.net", "oncall@example.org"]
    message = parse(received.data)
    assert str(message["Subject"]) == f"CRITICAL – {summary}"
    assert message["From"].addresses[0].display_name == "Zoë Ålert «NOC» 監視"
    assert message["Cc"] == "oncall@example.org"
    assert message["Message-ID"] == message_id_for(
        command["job_id"], "alerts@example.com"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert summary in message.get_body(("plain",)).get_content()
    assert summary in message.get_body(("html",)).get_content()


async def test_no_line_exceeds_the_smtp_limit(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port)
    unbroken = "ä" + "x" * 5000 + "€"
    command = make_command(
        summary="S" * 3000, details=f"{unbroken}\n{'word ' * 2000}", alert_id="a" * 1500
    )

    outcome = await sender.send(command, channel)

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    lines = smtp_server.messages[0].data.split(b"\r\n")
    assert max(len(line) for line in lines) <= FOLDED_LINE_LIMIT < SMTP_LINE_LIMIT
    text = parse(smtp_server.messages[0].data).get_body(("plain",)).get_content()
    assert unbroken in text


async def test_every_attempt_carries_the_same_message_id(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port)
    first = make_command()
    second = dict(first, attempt=2)

    await sender.send(first, channel)
    await sender.send(second, channel)

    ids = [parse(m.data)["Message-ID"] for m in smtp_server.messages]
    assert ids == [message_id_for(first["job_id"], "alerts@example.com")] * 2
    assert smtp_server.messages[0].data == smtp_server.messages[1].data


async def test_html_part_escapes_alert_text(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port)

    await sender.send(make_command(summary="<script>alert(1)</script> & co"), channel)

    html = parse(smtp_server.messages[0].data).get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


async def test_custom_body_template_fills_both_parts(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(
        smtp_server.port,
        body_template="Device {{ device_id }} at {{ site_id }}: <{{ summary }}>",
    )

    await sender.send(make_command(), channel)

    message = parse(smtp_server.messages[0].data)
    text = message.get_body(("plain",)).get_content()
    assert text.rstrip() == "Device router-7 at site-1: <Link down on router-7>"
    html = message.get_body(("html",)).get_content()
    assert "Device router-7 at site-1: &lt;Link down on router-7&gt;" in html


async def test_starttls_with_authentication(
    certificate, sender, make_command, caplog, make_channel
):
    caplog.set_level(logging.DEBUG)
    server = SmtpReceiver(
        tls="starttls", certificate=certificate, users={SMTP_USER: SMTP_PASSWORD}
    ).start()
    try:
        channel = make_channel(
            server.port,
            password=SMTP_PASSWORD,
            security="starttls",
            ca_certificate_pem=certificate.ca_pem,
            username=SMTP_USER,
        )
        outcome = await sender.send(make_command(), channel)
    finally:
        server.stop()

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    (received,) = server.messages
    assert received.tls is True
    assert received.login == SMTP_USER
    assert SMTP_PASSWORD not in caplog.text


async def test_implicit_tls(certificate, sender, make_command, make_channel):
    server = SmtpReceiver(tls="tls", certificate=certificate).start()
    try:
        channel = make_channel(
            server.port, security="tls", ca_certificate_pem=certificate.ca_pem
        )
        outcome = await sender.send(make_command(), channel)
    finally:
        server.stop()

    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    assert server.messages[0].tls is True


async def test_untrusted_certificate_is_refused_by_default(
    certificate, sender, make_command, make_channel
):
    server = SmtpReceiver(tls="starttls", certificate=certificate).start()
    try:
        refused = await sender.send(
            make_command(), make_channel(server.port, security="starttls")
        )
        unchecked = await sender.send(
            make_command(),
            make_channel(server.port, security="starttls", verify_certificate=False),
        )
    finally:
        server.stop()

    assert refused.kind is OutcomeKind.PERMANENT
    assert refused.reason is Reason.INVALID_CONFIG
    assert "certificate" in refused.error
    assert unchecked.kind is OutcomeKind.DELIVERED
    assert len(server.messages) == 1


async def test_wrong_password_is_permanent_and_not_echoed(
    certificate, sender, make_command, caplog, make_channel
):
    caplog.set_level(logging.DEBUG)
    server = SmtpReceiver(
        tls="starttls", certificate=certificate, users={SMTP_USER: "the-right-one"}
    ).start()
    try:
        channel = make_channel(
            server.port,
            password=SMTP_PASSWORD,
            security="starttls",
            ca_certificate_pem=certificate.ca_pem,
            username=SMTP_USER,
        )
        outcome = await sender.send(make_command(), channel)
    finally:
        server.stop()

    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.reason is Reason.SMTP_5XX
    assert outcome.status_code == 535
    assert SMTP_PASSWORD not in (outcome.error or "")
    assert SMTP_PASSWORD not in caplog.text
    assert not server.messages


async def test_username_without_password_is_invalid(
    smtp_server, sender, make_command, make_channel
):
    channel = make_channel(smtp_server.port, username=SMTP_USER)

    outcome = await sender.send(make_command(), channel)

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )


async def test_password_quoted_by_the_server_is_redacted(
    certificate, sender, make_command, make_channel, caplog
):
    caplog.set_level(logging.DEBUG)
    server = SmtpReceiver(
        tls="starttls", certificate=certificate, users={SMTP_USER: "the-right-one"}
    )
    server.handler.behaviour.echo_rejected_password = True
    server.start()
    try:
        channel = make_channel(
            server.port,
            password=SMTP_PASSWORD,
            security="starttls",
            ca_certificate_pem=certificate.ca_pem,
            username=SMTP_USER,
        )
        outcome = await sender.send(make_command(), channel)
    finally:
        server.stop()

    assert outcome.status_code == 535
    assert "[redacted]" in outcome.error
    assert SMTP_PASSWORD not in outcome.error
    assert SMTP_PASSWORD not in client_side_logs(caplog)
