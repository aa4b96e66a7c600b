"""Sending e-mail over SMTP, one open connection per server reused across jobs.

A connection is keyed by everything that shapes the session (server, port,
security, trust, credentials), so channels that share a relay share its
connection. Before reuse the connection is checked with NOOP; a server that
closed it meanwhile (idle timeout) gets a fresh one, which is reconnecting,
not retrying: the message has not been offered yet. Any failure during a
transaction discards the connection, since its state is then unknown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib

from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.channels.email import classify
from services.deliverer.channels.email.config import Config
from services.deliverer.channels.email.message import Envelope, build_envelope
from services.deliverer.outcome import Outcome, Reason
from services.deliverer.redact import redact, secret_values
from services.deliverer.templates import TemplateError
from services.deliverer.tls import client_context
from switchboard.settings import Settings

log = logging.getLogger(__name__)

# Exceptions an SMTP session can raise; anything else is a bug and propagates.
SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError)


@dataclass(frozen=True)
class ServerKey:
    """What makes two channels able to share one SMTP session."""

    host: str
    port: int
    security: str
    verify_certificate: bool
    ca_certificate_pem: str | None
    username: str | None
    password_digest: str | None = field(repr=False)


@dataclass
class _Session:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    smtp: aiosmtplib.SMTP | None = None


class Sender:
    """Delivers e-mail notifications; see the module docstring for reuse."""

    def __init__(self, settings: Settings) -> None:
        """Start with no connections; they open on first use."""
        self._settings = settings
        self._sessions: dict[ServerKey, _Session] = {}

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """Send the notification of ``command`` as one SMTP transaction."""
        config: Config = channel.config
        password = getattr(channel.secrets, "password", None)
        if config.username and not password:
            return Outcome.permanent(
                Reason.INVALID_CONFIG, "username set without password"
            )

        try:
            envelope = build_envelope(command, config, channel.name)
        except TemplateError as error:
            return Outcome.permanent(Reason.TEMPLATE_ERROR, str(error))

        key = _server_key(config, password)
        try:
            async with asyncio.timeout(config.timeout_s):
                refused = await self._transact(key, config, password, envelope)
        except SMTP_ERRORS as error:
            return _scrubbed(classify.outcome_for(error), channel)
        log.debug(
            "email accepted",
            extra={"job_id": command["job_id"], "channel": channel.id},
        )
        return _scrubbed(classify.delivered(refused), channel)

    async def close(self) -> None:
        """Say QUIT to every open server."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            async with session.lock:
                await _quit(session)

    async def _transact(
        self, key: ServerKey, config: Config, password: str | None, envelope: Envelope
    ) -> dict[str, aiosmtplib.SMTPResponse]:
        session = self._sessions.setdefault(key, _Session())
        async with session.lock:
            try:
                smtp = await self._ready(session, config, password)
                refused, _ = await smtp.sendmail(
                    envelope.sender, envelope.recipients, envelope.data
                )
            except BaseException:
                # Includes the deadline's cancellation: the session's state is
                # unknown after any failure, so the next message starts afresh.
                _drop(session)
                raise
        return refused

    async def _ready(
        self, session: _Session, config: Config, password: str | None
    ) -> aiosmtplib.SMTP:
        if session.smtp is not None and await _alive(session.smtp):
            return session.smtp
        _drop(session)
        session.smtp = await _open(config, password)
        return session.smtp


def _drop(session: _Session) -> None:
    """Close a session's connection without talking to the server."""
    if session.smtp is not None:
        session.smtp.close()
    session.smtp = None


async def _quit(session: _Session) -> None:
    """End a session politely; a failed QUIT changes nothing."""
    if session.smtp is not None and session.smtp.is_connected:
        try:
            await asyncio.wait_for(session.smtp.quit(), timeout=2)
        except SMTP_ERRORS:
            pass
    _drop(session)


async def _alive(smtp: aiosmtplib.SMTP) -> bool:
    """Whether a kept connection still works (the server may have closed it)."""
    if not smtp.is_connected:
        return False
    try:
        await smtp.noop()
    except SMTP_ERRORS:
        return False
    return True


async def _open(config: Config, password: str | None) -> aiosmtplib.SMTP:
    """Connect, secure and authenticate as the channel asks; raises on failure."""
    smtp = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=config.security == "tls",
        start_tls=config.security == "starttls",
        tls_context=_tls(config),
        timeout=config.timeout_s,
    )
    await smtp.connect()
    if config.username:
        try:
            await smtp.login(config.username, password or "")
        except SMTP_ERRORS:
            smtp.close()
            raise
    return smtp


def _tls(config: Config) -> ssl.SSLContext | None:
    if config.security == "none":
        return None
    return client_context(config.verify_certificate, config.ca_certificate_pem)


def _server_key(config: Config, password: str | None) -> ServerKey:
    # A digest, so a changed password opens a new session and the key holds
    # nothing that could leak if it were ever printed.
    digest = hashlib.sha256(password.encode()).hexdigest() if password else None
    return ServerKey(
        config.host,
        config.port,
        config.security,
        config.verify_certificate,
        config.ca_certificate_pem,
        config.username,
        digest,
    )


def _scrubbed(outcome: Outcome, channel: ResolvedChannel) -> Outcome:
    # Server replies and library messages never should quote the password,
    # but an outcome's error ends up in job records, so make sure.
    if not outcome.error:
        return outcome
    error = redact(outcome.error, secret_values(channel.secrets))
    return dataclasses.replace(outcome, error=error)
