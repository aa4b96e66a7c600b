"""Sending e-mail over SMTP, with open connections per server reused across jobs.

Connections are pooled by everything that shapes a session (server, port,
security, trust, credentials), so channels that share a relay share its
connections; at most MAX_CONNECTIONS_PER_SERVER transactions run at once per
server. Before reuse a connection is checked with NOOP; a server that closed
it meanwhile (idle timeout) gets a fresh one, which is reconnecting, not
retrying: the message has not been offered yet. Any failure during a
transaction closes the connection, since its state is then unknown.
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
from services.deliverer.targets import refused_host
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


# Parallel SMTP sessions to one server; relays commonly limit a client to a
# handful (Postfix smtpd_client_connection_count_limit defaults to 50, Exchange
# Online to 3 per mailbox), and a few already hide a slow server's round trips.
MAX_CONNECTIONS_PER_SERVER = 3


@dataclass
class _Pool:
    slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_CONNECTIONS_PER_SERVER)
    )
    idle: list[aiosmtplib.SMTP] = field(default_factory=list)


class Sender:
    """Delivers e-mail notifications; see the module docstring for reuse."""

    def __init__(self, settings: Settings) -> None:
        """Start with no connections; they open on first use."""
        self._settings = settings
        self._allow_private = settings.allow_private_targets
        self._pools: dict[ServerKey, _Pool] = {}

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

        # Checked at every send, also over a kept connection: the host may
        # resolve elsewhere now than when the channel was saved.
        target_refused = await refused_host(config.host, self._allow_private)
        if target_refused is not None:
            return target_refused

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
        """Say QUIT on every idle connection."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            while pool.idle:
                await _quit(pool.idle.pop())

    async def _transact(
        self, key: ServerKey, config: Config, password: str | None, envelope: Envelope
    ) -> dict[str, aiosmtplib.SMTPResponse]:
        pool = self._pools.setdefault(key, _Pool())
        async with pool.slots:
            smtp = await _checked_out(pool, config, password)
            try:
                refused, _ = await smtp.sendmail(
                    envelope.sender, envelope.recipients, envelope.data
                )
            except BaseException:
                # Includes the deadline's cancellation: the session's state is
                # unknown after any failure, so it is not reused.
                smtp.close()
                raise
            pool.idle.append(smtp)
        return refused


async def _checked_out(
    pool: _Pool, config: Config, password: str | None
) -> aiosmtplib.SMTP:
    """An idle connection that still works, or a new one."""
    while pool.idle:
        smtp = pool.idle.pop()
        try:
            if await _alive(smtp):
                return smtp
        except BaseException:
            smtp.close()
            raise
        smtp.close()
    return await _open(config, password)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """End a session politely; a failed QUIT changes nothing."""
    if smtp.is_connected:
        try:
            await asyncio.wait_for(smtp.quit(), timeout=2)
        except SMTP_ERRORS:
            pass
    smtp.close()


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
    try:
        await smtp.connect()
        if config.username:
            await smtp.login(config.username, password or "")
    except BaseException:
        # Includes the deadline's cancellation mid-handshake.
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
