"""Properties of the built message, whatever the alert and the names contain."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.deliverer.channels.email.config import Config
from services.deliverer.channels.email.message import (
    MAX_SUBJECT_CHARS,
    build_envelope,
)
from switchboard.jobs import new_command

# Any Unicode text except lone surrogates, which no UTF-8 string can hold.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)
NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200
)

# RFC 5322 section 2.1.1 (78 recommended); RFC 5321's hard limit is 998.
FOLDED_LINE_LIMIT = 78


def raw_header(data: bytes, name: str) -> str:
    """A header's value as sent, unfolded, encoded words still encoded."""
    value = email.message_from_bytes(data, policy=email.policy.compat32)[name]
    return re.sub(r"\r?\n", "", value)


def rfc2047_decoded(value: str) -> str:
    """Decode as RFC 2047 section 6.2 says: whitespace between encoded words
    is dropped. (The email package's newer parser keeps a space there.)"""
    return str(make_header(decode_header(value)))


def command_with(summary: str, details: str, device: str) -> dict:
    alert = {
        "event_id": "6f1c1c0e-0000-4000-8000-000000000001",
        "tenant_id": "tenant",
        "alert_id": "alert-1",
        "kind": "OPEN",
        "severity": "HIGH",
        "alert_type": "link_down",
        "site_id": None,
        "device_id": device,
        "summary": summary,
        "details": details,
        "labels": {"k": details[:50]},
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "source": "prop",
    }
    return new_command(alert, "channel", "email", "rule")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summary=TEXT, details=TEXT, device=TEXT, from_name=NAME)
def test_any_alert_gives_short_ascii_lines_that_decode_back(
    summary, details, device, from_name
):
    config = Config(
        host="mail.example.com",
        from_address="alerts@example.com",
        from_name=from_name,
        to=["noc@example.net"],
        subject_template="{{ summary }}",
    )

    envelope = build_envelope(command_with(summary, details, device), config)

    assert envelope.data.isascii()
    lines = envelope.data.split(b"\r\n")
    assert max(len(line) for line in lines) <= FOLDED_LINE_LIMIT
    message = email.message_from_bytes(envelope.data, policy=email.policy.default)
    name = config.from_name or ""
    assert (
        rfc2047_decoded(raw_header(envelope.data, "From"))
        in (
            f"{name} <alerts@example.com>",
            f'"{name}" <alerts@example.com>',
            "alerts@example.com",
        )
        or message["From"].addresses[0].display_name == name
    )
    subject = rfc2047_decoded(raw_header(envelope.data, "Subject"))
    expected = " ".join(summary.split())
    if len(expected) <= MAX_SUBJECT_CHARS and expected:
        assert subject == expected
    assert len(subject) <= MAX_SUBJECT_CHARS
    text = message.get_body(("plain",)).get_content()
    assert (
        details.replace("\r\n", "\n").replace("\r", "\n") in text.replace("\r\n", "\n")
        or not details
    )


def test_ascii_text_that_looks_like_an_encoded_word_decodes_back_as_written():
    config = Config(
        host="mail.example.com",
        from_address="alerts@example.com",
        to=["noc@example.net"],
        subject_template="{{ summary }}",
    )
    summary = "=?utf-8?q?Resolved?= (not really)"

    envelope = build_envelope(command_with(summary, "", "router-1"), config)

    assert rfc2047_decoded(raw_header(envelope.data, "Subject")) == summary


PRINTABLE_ASCII_NAME = st.text(
    st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=200
).filter(str.strip)


@settings(max_examples=200, deadline=None)
@given(from_name=PRINTABLE_ASCII_NAME)
@example(from_name='Acme Network Operations Centre "Europe", Amsterdam (24/7 duty)')
@example(from_name=f'A "{"q" * 70}" (c)')
def test_any_ascii_name_stays_one_sender(from_name):
    # Quotes, commas and parentheses must survive folding as part of the name.
    config = Config(
        host="mail.example.com",
        from_address="alerts@example.com",
        from_name=from_name,
        to=["noc@example.net"],
    )

    envelope = build_envelope(command_with("s", "", "router-1"), config)

    # Encoded words are atoms: parse the mailbox first, then decode its name.
    ((name, address),) = email.utils.getaddresses([raw_header(envelope.data, "From")])
    assert address == "alerts@example.com"
    assert rfc2047_decoded(name) == config.from_name
