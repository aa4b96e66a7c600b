"""TLS settings shared by channels that speak TLS outside HTTP (SMTP, MQTT).

Certificate verification is on unless a channel turns it off; a channel may
add one CA (a company's private CA) to the system's trust store.
"""

from __future__ import annotations

import ssl


def check_certificate(pem: str) -> str:
    """``pem`` if it holds at least one X.509 certificate; ValueError otherwise."""
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("ca_certificate_pem is not a PEM certificate") from None
    if not certificates:
        raise ValueError("ca_certificate_pem holds no certificate")
    return pem


def client_context(verify: bool, ca_certificate_pem: str | None) -> ssl.SSLContext:
    """A client context trusting the system's CAs plus ``ca_certificate_pem``."""
    context = ssl.create_default_context()
    if ca_certificate_pem:
        context.load_verify_locations(cadata=ca_certificate_pem)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def certificate_failure(error: BaseException) -> str | None:
    """The verification message if ``error`` was caused by a refused certificate."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None
