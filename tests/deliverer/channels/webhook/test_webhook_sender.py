"""The webhook sender against a real local receiver that verifies signatures."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from services.deliverer.channels.webhook.config import Secrets, credential_variants
from services.deliverer.channels.webhook.payload import PAYLOAD_VERSION
from services.deliverer.channels.webhook.sender import (
    MAX_RESPONSE_CHARS,
    Sender,
    signature_headers,
)
from services.deliverer.outcome import OutcomeKind, Reason
from services.deliverer.redact import REDACTED
from services.receivers.webhook import Reply
from switchboard.settings import Settings
from tests.deliverer.helpers import SIGNING_SECRET, make_command, resolved_webhook
from tests.deliverer.status_table import HTTP_STATUS_DECISIONS

LOOPBACK = Settings(allow_private_targets=True)


def test_signer_reproduces_the_published_vector() -> None:
    """The vector from vendor/README.md: the reference libraries' own test."""
    headers = signature_headers(
        Webhook(SIGNING_SECRET),
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        b'{"test": 2432232314}',
    )

    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


async def test_every_status_code_gets_its_decision(receiver) -> None:
    sender = Sender(LOOPBACK)
    channel = resolved_webhook(receiver.url("/status"))
    try:
        for status, kind, reason in HTTP_STATUS_DECISIONS:
            receiver.plan("/status", [Reply(status, (("location", "/elsewhere"),))])
            outcome = await sender.send(make_command("t", "c"), channel)

            assert (status, outcome.kind, outcome.reason) == (status, kind, reason)
            if kind is not OutcomeKind.DELIVERED:
                assert outcome.status_code == status
    finally:
        await sender.close()


async def test_payload_is_versioned_signed_and_carries_custom_headers(receiver) -> None:
    sender = Sender(LOOPBACK)
    channel = resolved_webhook(receiver.url(), headers={"X-Team": "noc"})
    command = make_command("tenant-a", "channel-a", labels={"rack": "r1"})
    try:
        outcome = await sender.send(command, channel)
    finally:
        await sender.close()

    assert outcome.kind is OutcomeKind.DELIVERED
    [request] = receiver.received()
    assert request.signature_valid is True
    assert request.webhook_id == command["job_id"]
    assert request.headers["x-team"] == "noc"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["version"] == PAYLOAD_VERSION
    assert body["type"] == "alert.open"
    assert body["job_id"] == command["job_id"]
    assert body["attempt"] == 1
    assert body["alert"]["labels"] == {"rack": "r1"}
    assert body["alert"]["occurred_at"] == "2026-12-03T19:00:00.000Z"


@pytest.mark.parametrize("status", [307, 308])
async def test_307_and_308_are_followed_once_with_the_same_request(
    receiver, status: int
) -> None:
    receiver.plan("/old", [Reply(status, (("location", "/new"),))])
    sender = Sender(LOOPBACK)
    try:
        outcome = await sender.send(
            make_command("t", "c"), resolved_webhook(receiver.url("/old"))
        )
    finally:
        await sender.close()

    assert outcome.kind is OutcomeKind.DELIVERED
    first, second = receiver.received()
    assert (first.path, second.path) == ("/old", "/new")
    assert second.method == "POST"
    assert second.body == first.body
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert second.headers[header] == first.headers[header]
    assert second.signature_valid is True


async def test_a_second_redirect_is_not_followed(receiver) -> None:
    receiver.plan("/a", [Reply(307, (("location", "/b"),))])
    receiver.plan("/b", [Reply(308, (("location", "/c"),))])
    sender = Sender(LOOPBACK)
    try:
        outcome = await sender.send(
            make_command("t", "c"), resolved_webhook(receiver.url("/a"))
        )
    finally:
        await sender.close()

    assert outcome.kind is OutcomeKind.PERMANENT
    assert outcome.reason is Reason.HTTP_REDIRECT
    assert "308" in outcome.error and "/c" in outcome.error
    assert [r.path for r in receiver.received()] == ["/a", "/b"]


async def test_other_redirects_name_status_and_location(receiver) -> None:
    receiver.plan("/moved", [Reply(301, (("location", "https://example.org/x"),))])
    sender = Sender(LOOPBACK)
    try:
        outcome = await sender.send(
            make_command("t", "c"), resolved_webhook(receiver.url("/moved"))
        )
    finally:
        await sender.close()

    assert outcome.kind is OutcomeKind.PERMANENT
    assert "301" in outcome.error and "https://example.org/x" in outcome.error
    assert len(receiver.received()) == 1


async def test_response_body_kept_in_the_error_is_bounded(receiver) -> None:
    receiver.plan("/big", [Reply(500, body=("é" * 50_000).encode())])
    sender = Sender(LOOPBACK)
    try:
        outcome = await sender.send(
            make_command("t", "c"), resolved_webhook(receiver.url("/big"))
        )
    finally:
        await sender.close()

    assert outcome.kind is OutcomeKind.RETRYABLE
    assert len(outcome.error) <= MAX_RESPONSE_CHARS + len("HTTP 500: ")
    assert "\ufffd" not in outcome.error


async def test_connection_refused_is_retryable() -> None:
    sender = Sender(LOOPBACK)
    try:
        outcome = await sender.send(
            make_command("t", "c"), resolved_webhook("http://127.0.0.1:9/hook")
        )
    finally:
        await sender.close()

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.RETRYABLE,
        Reason.CONNECTION_ERROR,
    )


async def test_private_targets_are_refused_unless_allowed(receiver) -> None:
    sender = Sender(Settings(allow_private_targets=False))
    try:
        outcome = await sender.send(
            make_command("t", "c"), resolved_webhook(receiver.url())
        )
    finally:
        await sender.close()

    assert (outcome.kind, outcome.reason) == (
        OutcomeKind.PERMANENT,
        Reason.INVALID_CONFIG,
    )
    assert receiver.received() == []


async def test_without_a_secret_the_request_is_unsigned_but_identified(
    receiver,
) -> None:
    sender = Sender(LOOPBACK)
    command = make_command("t", "c")
    try:
        await sender.send(command, resolved_webhook(receiver.url(), secret=None))
    finally:
        await sender.close()

    [request] = receiver.received()
    assert request.webhook_id == command["job_id"]
    assert "webhook-signature" not in request.headers


TOKEN = "hdr-t0ken-5b7e1d"


def _with_secret_headers(url: str, **config: object):
    channel = resolved_webhook(url, **config)
    secrets = Secrets(
        signing_secret=SIGNING_SECRET,
        secret_headers={"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "k3y-0a9f"},
    )
    return dataclasses.replace(channel, secrets=secrets)


async def test_secret_headers_are_sent_with_the_plain_ones(receiver) -> None:
    sender = Sender(LOOPBACK)
    channel = _with_secret_headers(receiver.url(), headers={"X-Team": "noc"})
    try:
        outcome = await sender.send(make_command("t", "c"), channel)
    finally:
        await sender.close()

    assert outcome.kind is OutcomeKind.DELIVERED
    [request] = receiver.received()
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-api-key"] == "k3y-0a9f"
    assert request.headers["x-team"] == "noc"
    assert request.signature_valid is True


@pytest.mark.parametrize(
    "echo", [f"bad credentials: Bearer {TOKEN}", f"unknown token {TOKEN}", "k3y-0a9f"]
)
async def test_a_secret_header_quoted_back_is_redacted(receiver, echo: str) -> None:
    receiver.plan("/echo", [Reply(401, body=f"refused: {echo}".encode())])
    sender = Sender(LOOPBACK)
    try:
        outcome = await sender.send(
            make_command("t", "c"), _with_secret_headers(receiver.url("/echo"))
        )
    finally:
        await sender.close()

    assert outcome.kind is OutcomeKind.PERMANENT
    assert TOKEN not in outcome.error and "k3y-0a9f" not in outcome.error
    assert REDACTED in outcome.error


def test_basic_credentials_are_redacted_in_every_form() -> None:
    token = base64.b64encode(b"ops:pa55-w0rd").decode()
    variants = credential_variants({"Authorization": f"Basic {token}"})

    assert {token, "ops:pa55-w0rd", "pa55-w0rd"} <= set(variants)
    assert credential_variants(None) == ()
