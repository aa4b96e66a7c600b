"""Configuration of the generic webhook channel (Standard Webhooks signing)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from services.deliverer.channels.base import (
    ChannelConfigBase,
    ChannelSecretsBase,
    TargetUrl,
)

# Headers the sender sets itself; a customer must not override them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# Receivers commonly cap a header at 4-8 KB; the bounds also keep a channel far
# below Kafka's message size.
MAX_HEADERS = 50
MAX_HEADER_NAME_LENGTH = 256
MAX_HEADER_VALUE_LENGTH = 4096


class Config(ChannelConfigBase):
    """Where to POST and which extra headers to send."""

    url: TargetUrl = Field(description="Target URL; http or https.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="Extra request headers (not secret).",
    )

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if len(name) > MAX_HEADER_NAME_LENGTH:
                raise ValueError(
                    f"header names have at most {MAX_HEADER_NAME_LENGTH} characters"
                )
            if len(value) > MAX_HEADER_VALUE_LENGTH:
                raise ValueError(
                    f"header {name!r} value has more than "
                    f"{MAX_HEADER_VALUE_LENGTH} characters"
                )
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by Switchboard")
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} value contains a line break")
        return headers


class Secrets(ChannelSecretsBase):
    """The Standard Webhooks signing secret (``whsec_`` + base64)."""

    signing_secret: str | None = Field(
        None, description="whsec_… secret the receiver verifies signatures with."
    )

    @field_validator("signing_secret")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        import base64
        import binascii

        if value is None:
            return value
        raw = value.removeprefix("whsec_")
        try:
            key = base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise ValueError(
                "signing_secret must be whsec_ followed by base64"
            ) from None
        if not 24 <= len(key) <= 64:
            raise ValueError("signing_secret must decode to 24 to 64 bytes")
        return value
