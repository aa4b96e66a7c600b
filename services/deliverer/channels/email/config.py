"""Configuration of the e-mail channel (SMTP)."""

from __future__ import annotations

from typing import Literal

from pydantic import EmailStr, Field

from services.deliverer.channels.base import ChannelConfigBase, ChannelSecretsBase


class Config(ChannelConfigBase):
    """SMTP server, security, sender, recipients and templates."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    verify_certificate: bool = True
    ca_certificate_pem: str | None = Field(
        None, description="PEM of a CA to trust in addition to the system's."
    )
    username: str | None = Field(None, max_length=255)
    from_address: EmailStr
    from_name: str | None = Field(None, max_length=200)
    to: list[EmailStr] = Field(min_length=1, max_length=100)
    cc: list[EmailStr] = Field(default_factory=list, max_length=100)
    subject_template: str | None = Field(None, max_length=1000)
    body_template: str | None = Field(None, max_length=20000)


class Secrets(ChannelSecretsBase):
    """The SMTP password."""

    password: str | None = Field(None, max_length=1000)


