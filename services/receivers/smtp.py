"""A local SMTP server that records what it receives, for tests and the demo.

It runs aiosmtpd in its own thread and keeps the exact bytes of every message,
the envelope, whether the session was under TLS and who authenticated. Tests
can make it answer DATA or RCPT with a chosen reply, drop a connection in the
middle of DATA, or close every open connection (as a server's idle timeout
would). SMTPUTF8 stays off, like many real relays, so a message that needs it
is refused.
"""

from __future__ import annotations

import argparse
import datetime
import email
import email.policy
import ipaddress
import json
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str | None
    session_number: int


@dataclass
class Behaviour:
    """How the server answers; tests change it between sends."""

    data_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    drop_during_data: bool = False
    # A careless server that quotes the rejected password back (tests redaction).
    echo_rejected_password: bool = False


class RecordingHandler:
    """aiosmtpd handler that records messages and follows :class:`Behaviour`."""

    def __init__(self) -> None:
        """Start with nothing received."""
        self.messages: list[ReceivedMessage] = []
        self.behaviour = Behaviour()
        self._sessions: list[Session] = []
        self._lock = threading.Lock()

    @property
    def session_count(self) -> int:
        """How many distinct SMTP sessions carried a MAIL command."""
        return len(self._sessions)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options
    ) -> str:
        """Accept the sender and note the session it came in."""
        with self._lock:
            if not any(known is session for known in self._sessions):
                self._sessions.append(session)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options
    ) -> str:
        """Accept a recipient unless a reply was configured for it."""
        reply = self.behaviour.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Record the message, or answer / drop as configured."""
        if self.behaviour.drop_during_data:
            server.transport.close()
            return "421 closing"
        if self.behaviour.data_reply:
            return self.behaviour.data_reply
        login = session.auth_data if isinstance(session.auth_data, str) else None
        with self._lock:
            number = next(i for i, s in enumerate(self._sessions) if s is session)
            self.messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or b""),
                    tls=_under_tls(server, session),
                    login=login,
                    session_number=number,
                )
            )
        return "250 Message accepted"


def _under_tls(server: SMTP, session: Session) -> bool:
    # session.ssl is set by STARTTLS only; implicit TLS shows on the transport.
    transport = server.transport
    implicit = transport is not None and transport.get_extra_info("ssl_object")
    return session.ssl is not None or bool(implicit)


class _Controller(Controller):
    """A controller that keeps its SMTP protocol objects so it can close them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.servers: list[SMTP] = []

    def factory(self) -> SMTP:
        server = super().factory()
        self.servers.append(server)
        return server


class SmtpReceiver:
    """An aiosmtpd server on a free loopback port.

    ``tls`` is ``None`` (plain), ``"starttls"`` (required before MAIL) or
    ``"tls"`` (implicit TLS); both need ``certificate`` (a :class:`LocalCertificate`).
    ``users`` maps login to password and turns on AUTH (PLAIN and LOGIN).
    """

    def __init__(
        self,
        *,
        tls: str | None = None,
        certificate: LocalCertificate | None = None,
        users: dict[str, str] | None = None,
        auth_require_tls: bool = True,
        port: int | None = None,
    ) -> None:
        """Configure the server; :meth:`start` opens the port (default: a free one)."""
        self.handler = RecordingHandler()
        self.port = port or free_tcp_port()
        self._users = users
        kwargs: dict[str, Any] = {
            "hostname": LOOPBACK,
            "port": self.port,
            "server_hostname": "switchboard-test-smtp",
            "auth_require_tls": auth_require_tls,
        }
        if users is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
        if tls == "starttls":
            kwargs["tls_context"] = certificate.server_context()
            kwargs["require_starttls"] = True
        elif tls == "tls":
            kwargs["ssl_context"] = certificate.server_context()
        self._controller = _Controller(self.handler, **kwargs)

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages received so far, oldest first."""
        return self.handler.messages

    def start(self) -> SmtpReceiver:
        """Start serving in a background thread."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        self._controller.stop()

    def drop_connections(self) -> None:
        """Close every open client connection from the server side."""
        for server in list(self._controller.servers):
            transport = server.transport
            if transport is not None:
                self._controller.loop.call_soon_threadsafe(transport.close)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self._users is None:
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        accepted = self._users.get(login) == password
        message = None
        if not accepted and self.handler.behaviour.echo_rejected_password:
            message = f"535 5.7.8 password {password} is wrong"
        return AuthResult(
            success=accepted, handled=False, message=message, auth_data=login
        )


def free_tcp_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class LocalCertificate:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""

    ca_pem: str
    cert_pem: str
    key_pem: str
    directory: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context serving the certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            self.directory / "server.pem", self.directory / "key.pem"
        )
        return context


def make_local_certificate(directory: Path) -> LocalCertificate:
    """Generate a CA and a server certificate signed by it, written to ``directory``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate_authority(ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(key, ca_key, ca_cert)

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "server.pem").write_text(cert_pem + ca_pem)
    (directory / "key.pem").write_text(key_pem)
    return LocalCertificate(ca_pem, cert_pem, key_pem, directory)


def _validity(builder: Any) -> Any:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(
        now - datetime.timedelta(minutes=5)
    ).not_valid_after(now + datetime.timedelta(days=1))


def _certificate_authority(ca_key: Any) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Switchboard test CA")])
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    return _validity(builder).sign(ca_key, hashes.SHA256())


def _server_certificate(key: Any, ca_key: Any, ca_cert: Any) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    )
    return _validity(builder).sign(ca_key, hashes.SHA256())


def _summary(message: ReceivedMessage) -> str:
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    return json.dumps(
        {
            "mail_from": message.mail_from,
            "rcpt_tos": message.rcpt_tos,
            "message_id": parsed["Message-ID"],
            "subject": str(parsed["Subject"]),
            "tls": message.tls,
            "bytes": len(message.data),
        },
        ensure_ascii=False,
    )


def main() -> None:
    """Run a plain SMTP receiver in the foreground, one JSON line per message."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=2525)
    args = parser.parse_args()
    # SIGTERM stops it like Ctrl-C, so the peer it started is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    receiver = SmtpReceiver(port=args.port).start()
    print(f"listening on {LOOPBACK}:{receiver.port}", flush=True)
    shown = 0
    try:
        while True:
            for message in receiver.messages[shown:]:
                print(_summary(message), flush=True)
                shown += 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
