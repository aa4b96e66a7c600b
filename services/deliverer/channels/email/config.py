"""Configuration of the e-mail channel (SMTP).

Addresses are kept in a form every SMTP server accepts: the local part must be
ASCII (a server without SMTPUTF8 refuses anything else) and the domain is
stored in its IDNA (``xn--``) form. Display names may be any Unicode; they are
encoded in the message headers (RFC 2047). Templates are checked against a
sample alert when the channel is saved.
"""

from __future__ import annotations

from typing import Literal

from pydantic import EmailStr, Field, field_validator, model_validator

from services.deliverer import templates
from services.deliverer.channels.base import (
    ChannelConfigBase,
    ChannelSecretsBase,
    TargetHost,
)
from services.deliverer.tls import check_certificate


def ascii_address(address: str) -> str:
    """``address`` with an ASCII local part and an IDNA-encoded domain."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError(
            f"{address!r}: the part before @ must be ASCII (SMTPUTF8 is not assumed)"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{address!r}: the domain is not a valid IDNA name") from None
    return f"{local}@{ascii_domain.lower()}"


class Config(ChannelConfigBase):
    """SMTP server, security, sender, recipients and templates."""

    host: TargetHost
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="none, STARTTLS on a plain port, or implicit TLS."
    )
    verify_certificate: bool = True
    ca_certificate_pem: str | None = Field(
        None,
        max_length=100_000,
        description="PEM of a CA to trust in addition to the system's.",
    )
    username: str | None = Field(None, max_length=255)
    from_address: EmailStr
    from_name: str | None = Field(None, max_length=200)
    to: list[EmailStr] = Field(min_length=1, max_length=100)
    cc: list[EmailStr] = Field(default_factory=list, max_length=100)
    subject_template: str | None = Field(
        None, max_length=1000, description="Jinja2; default: severity, kind, summary."
    )
    body_template: str | None = Field(
        None, max_length=20000, description="Jinja2 for the text part."
    )
    html_template: str | None = Field(
        None,
        max_length=50000,
        description="Jinja2 (autoescaped) for the HTML part; default: a table, "
        "or the text part in <pre> when only body_template is set.",
    )

    @field_validator("from_address")
    @classmethod
    def _check_from(cls, value: str) -> str:
        return ascii_address(value)

    @field_validator("to", "cc")
    @classmethod
    def _check_recipients(cls, values: list[str]) -> list[str]:
        return [ascii_address(value) for value in values]

    @field_validator("from_name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("from_name must be one line")
        # Runs of spaces do not survive header folding; store what recipients see.
        return " ".join(value.split()) if value is not None else None

    @field_validator("subject_template", "body_template")
    @classmethod
    def _check_text_template(cls, value: str | None) -> str | None:
        return None if value is None else templates.check(value)

    @field_validator("html_template")
    @classmethod
    def _check_html_template(cls, value: str | None) -> str | None:
        return None if value is None else templates.check(value, autoescape=True)

    @field_validator("ca_certificate_pem")
    @classmethod
    def _check_ca(cls, value: str | None) -> str | None:
        return None if value is None else check_certificate(value)

    @model_validator(mode="after")
    def _check_security(self) -> Config:
        if self.ca_certificate_pem and self.security == "none":
            raise ValueError("ca_certificate_pem needs security starttls or tls")
        return self

    def secret_problems(self, secrets: Secrets) -> list[tuple[str, str]]:
        """(field, problem) for each secret this configuration needs and lacks."""
        if self.username and not secrets.password:
            return [("secrets.password", "config.username is set; give its password")]
        return []


class Secrets(ChannelSecretsBase):
    """The SMTP password (used only together with ``Config.username``)."""

    password: str | None = Field(None, max_length=1000)
