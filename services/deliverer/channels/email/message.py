"""Building the e-mail for one delivery command, as the bytes sent in DATA.

The message is plain 7-bit ASCII on the wire whatever the alert contains, so
any server accepts it without SMTPUTF8 or 8BITMIME: headers with non-ASCII
text are RFC 2047 encoded words, parts are quoted-printable or base64, and
every line is folded to at most 78 characters (RFC 5322 section 2.1.1; the
hard SMTP limit is 998, RFC 5321 section 4.5.3.1.6). The Message-ID derives
from the job id, so every attempt of a job carries the same one and a
recipient's mail system can discard a duplicate.
"""

from __future__ import annotations

import email.policy
import email.utils
import html
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

from services.deliverer import templates
from services.deliverer.channels.email.config import Config
from services.deliverer.text import truncate_chars

# 7-bit transfer encodings and 78-character folding for every header and part.
# Headers this module encodes itself (see _encoded_words) are kept as written.
POLICY = email.policy.SMTP.clone(
    cte_type="7bit", max_line_length=78, refold_source="none"
)

# A subject is for scanning an inbox; longer ones are cut with a marker.
MAX_SUBJECT_CHARS = 200

DEFAULT_SUBJECT = (
    "{% if is_test %}[TEST] {% endif %}[{{ severity }}] {{ kind }}: {{ summary }}"
)

DEFAULT_BODY = """\
{{ summary }}

Severity:    {{ severity }}
Event:       {{ kind }}
Alert type:  {{ alert_type }}
Site:        {{ site_id or "-" }}
Device:      {{ device_id or "-" }}
Occurred at: {{ occurred_at }}
Source:      {{ source }}
Alert id:    {{ alert_id }}
{% if details %}
{{ details }}
{% endif %}{% if labels %}
Labels:
{% for name, value in labels|dictsort %}  {{ name }}: {{ value }}
{% endfor %}{% endif %}
--
Sent by Switchboard for {{ tenant_id }}, job {{ job_id }}
"""

DEFAULT_HTML = """\
<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<h2>{{ summary }}</h2>
<table cellpadding="4">
<tr><th align="left">Severity</th><td>{{ severity }}</td></tr>
<tr><th align="left">Event</th><td>{{ kind }}</td></tr>
<tr><th align="left">Alert type</th><td>{{ alert_type }}</td></tr>
<tr><th align="left">Site</th><td>{{ site_id or "-" }}</td></tr>
<tr><th align="left">Device</th><td>{{ device_id or "-" }}</td></tr>
<tr><th align="left">Occurred at</th><td>{{ occurred_at }}</td></tr>
<tr><th align="left">Source</th><td>{{ source }}</td></tr>
<tr><th align="left">Alert id</th><td>{{ alert_id }}</td></tr>
{% for name, value in labels|dictsort %}\
<tr><th align="left">{{ name }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
{% if details %}<pre style="white-space: pre-wrap">{{ details }}</pre>{% endif %}
<p style="color: #666">Sent by Switchboard for {{ tenant_id }}, job {{ job_id }}</p>
</body></html>
"""


def _encoded_words(text: str, header_name: str) -> str:
    """``text`` as RFC 2047 encoded words, folded to 78 characters.

    The email package's own folding may split a phrase into encoded words at
    a space and use that space as the fold, which decoders then drop
    (RFC 2047 section 6.2), so "Ålert «NOC»" would arrive as "Ålert«NOC»".
    The older Header class splits inside the encoded text instead.
    """
    header = Header(text, "utf-8", maxlinelen=78, header_name=header_name)
    return header.encode(linesep="\r\n")


def _set_text_header(message: EmailMessage, name: str, text: str) -> None:
    # ASCII text that looks like an encoded word ("=?utf-8?q?x?=") would be
    # decoded by the reader into something else, so it is encoded too.
    if text.isascii() and "=?" not in text:
        message[name] = text
    else:
        message.set_raw(name, _encoded_words(text, name))


def _set_from(message: EmailMessage, display_name: str, address: str) -> None:
    mailbox = Address(display_name, addr_spec=address)
    # The email package unquotes a quoted display name when it has to fold it,
    # so a long name with quotes or commas would arrive as other addresses.
    fits = len(f"From: {mailbox}") <= POLICY.max_line_length
    plain = display_name.isascii() and "=?" not in display_name
    if not display_name or (plain and fits):
        message["From"] = mailbox
    else:
        # The address on its own line keeps every line short whatever the name.
        encoded = _encoded_words(display_name, "From")
        message.set_raw("From", f"{encoded}\r\n <{address}>")


@dataclass(frozen=True)
class Envelope:
    """What one SMTP transaction sends: MAIL FROM, RCPT TO and the DATA bytes."""

    sender: str
    recipients: list[str]
    data: bytes
    message_id: str


def message_id_for(job_id: str, from_address: str) -> str:
    """The Message-ID of every attempt of one job (RFC 5322 msg-id)."""
    domain = from_address.rpartition("@")[2] or "switchboard.invalid"
    return f"<{job_id}.switchboard@{domain}>"


def build_envelope(
    command: dict[str, Any], config: Config, channel_name: str = ""
) -> Envelope:
    """The envelope and message for ``command``; raises TemplateError."""
    context = templates.alert_context(command, channel_name)
    subject, text, html_part = _render_parts(context, config)
    message = _message(command, config, subject, text, html_part)
    recipients = list(dict.fromkeys([*config.to, *config.cc]))
    return Envelope(
        sender=config.from_address,
        recipients=recipients,
        data=message.as_bytes(policy=POLICY),
        message_id=message["Message-ID"],
    )


def _render_parts(context: dict[str, Any], config: Config) -> tuple[str, str, str]:
    subject = templates.render(config.subject_template or DEFAULT_SUBJECT, context)
    text = templates.render(config.body_template or DEFAULT_BODY, context)
    if config.html_template:
        html_part = templates.render(config.html_template, context, autoescape=True)
    elif config.body_template:
        html_part = _preformatted(text)
    else:
        html_part = templates.render(DEFAULT_HTML, context, autoescape=True)
    return _one_line(subject), text, html_part


def _one_line(subject: str) -> str:
    # A header is one logical line; line breaks from a template must not end it.
    flat = " ".join(subject.split())
    return truncate_chars(flat, MAX_SUBJECT_CHARS) or "Switchboard notification"


def _preformatted(text: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><body><pre style="white-space: pre-wrap">'
        f"{html.escape(text)}</pre></body></html>\n"
    )


def _message(
    command: dict[str, Any], config: Config, subject: str, text: str, html_part: str
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    _set_from(message, config.from_name or "", config.from_address)
    message["To"] = [Address(addr_spec=address) for address in config.to]
    if config.cc:
        message["Cc"] = [Address(addr_spec=address) for address in config.cc]
    _set_text_header(message, "Subject", subject)
    message["Date"] = email.utils.format_datetime(command["created_at"])
    message["Message-ID"] = message_id_for(command["job_id"], config.from_address)
    # RFC 3834: marks the mail as machine-sent so auto-responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Switchboard-Job-Id"] = command["job_id"]
    alert_id = _one_line(str(command["alert"]["alert_id"]))
    _set_text_header(message, "X-Switchboard-Alert-Id", alert_id)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html_part, subtype="html", charset="utf-8")
    # A boundary from the job id keeps every attempt byte-identical. "=_" cannot
    # occur in quoted-printable or base64 text (RFC 2045 section 6.7).
    boundary = f"=_{command['job_id']}"
    if boundary not in text and boundary not in html_part:
        message.set_boundary(boundary)
    return message
