"""Configuration of the generic webhook channel (Standard Webhooks signing).

Headers come in two kinds. ``Config.headers`` are plain settings: stored in
clear, returned by the API and published on notify.config as they are, so they
must not carry credentials. ``Secrets.secret_headers`` are write-only: encrypted
at rest and on notify.config, reported only as set or not set, and removed from
any error text. A channel saved with a credential-looking plain header (see
:func:`is_credential_header`) or a URL with a user and password is refused with
a pointer to the secret headers; channels stored before that rule keep working.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

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
# What HTTP clients send as a header value: visible ASCII, spaces and tabs.
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]*$")
# Receivers commonly cap a header at 4-8 KB; the bounds also keep a channel far
# below Kafka's message size.
MAX_HEADERS = 50
MAX_HEADER_NAME_LENGTH = 256
MAX_HEADER_VALUE_LENGTH = 4096
# Header names that carry credentials: the standard ones by name, and custom
# ones by a word in the name (X-Api-Key, X-Auth-Token, X-Webhook-Secret, ...).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
CREDENTIAL_WORDS = ("token", "secret", "api-key", "apikey", "api_key", "password")
CREDENTIAL_WORDS += ("auth", "cookie")
SECRET_HEADERS_FIELD = "secrets.secret_headers"


def is_credential_header(name: str) -> bool:
    """Whether a header of this name usually carries a credential."""
    lowered = name.strip().lower()
    return lowered in CREDENTIAL_HEADERS or any(w in lowered for w in CREDENTIAL_WORDS)


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    """The checks every header passes, plain or secret."""
    for name, value in headers.items():
        if len(name) > MAX_HEADER_NAME_LENGTH:
            raise ValueError(
                f"header names have at most {MAX_HEADER_NAME_LENGTH} characters"
            )
        if len(value) > MAX_HEADER_VALUE_LENGTH:
            # The name only: the value of a secret header must not be quoted.
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
        if not _HEADER_VALUE.match(value):
            raise ValueError(
                f"header {name!r} value must be ASCII: visible characters, spaces "
                "and tabs (encode other text, e.g. as percent-encoded UTF-8)"
            )
    return headers


class Config(ChannelConfigBase):
    """Where to POST and which extra headers to send."""

    url: TargetUrl = Field(
        description="Target URL; http or https, without a user or password "
        "(send credentials in `secrets.secret_headers`)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="Extra request headers, not secret: stored and shown in clear. "
        "Credential headers (Authorization, Proxy-Authorization, Cookie, or a name "
        "containing token, secret, api-key, apikey, password or auth) are refused "
        "here; put them in `secrets.secret_headers`.",
    )

    @field_validator("headers")
    @classmethod
    def _check_plain_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return _check_headers(headers)

    def secret_problems(self, secrets: Any) -> list[tuple[str, str]]:
        """Credentials kept in clear, and headers set both in clear and secret.

        Checked when a channel is saved rather than in the fields' validators,
        so that a channel stored before these rules still delivers.
        """
        problems = [
            (
                "config.headers",
                f"header {name!r} looks like a credential; plain headers are "
                f"stored and shown in clear, so put it in {SECRET_HEADERS_FIELD}",
            )
            for name in self.headers
            if is_credential_header(name)
        ]
        if self.url.username is not None or self.url.password is not None:
            problems.append(
                (
                    "config.url",
                    "the URL must not contain a user or password, which would be "
                    "stored and shown in clear; send an Authorization header in "
                    f"{SECRET_HEADERS_FIELD} instead",
                )
            )
        secret_names = {
            n.lower() for n in getattr(secrets, "secret_headers", None) or {}
        }
        problems += [
            (
                SECRET_HEADERS_FIELD,
                f"header {name!r} is also set in config.headers; set it in one place",
            )
            for name in self.headers
            if name.lower() in secret_names
        ]
        return problems


class Secrets(ChannelSecretsBase):
    """The signing secret and the headers that carry credentials."""

    signing_secret: str | None = Field(
        None, description="whsec_… secret the receiver verifies signatures with."
    )
    secret_headers: dict[str, str] | None = Field(
        None,
        max_length=MAX_HEADERS,
        description="Request headers that carry credentials, such as "
        "`Authorization: Bearer …` or `X-Api-Key`: encrypted, never returned, "
        "removed from error text. Sent together with `config.headers`. Replaced "
        "as a whole on update; null removes them all.",
    )

    @field_validator("signing_secret")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
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

    @field_validator("secret_headers")
    @classmethod
    def _check_secret_headers(
        cls, headers: dict[str, str] | None
    ) -> dict[str, str] | None:
        if not headers:
            # No headers is "not set": the API never reports an empty map as set.
            return None
        return _check_headers(headers)


def credential_variants(secret_headers: dict[str, str] | None) -> tuple[str, ...]:
    """What to remove from error text for the secret headers, beyond their values.

    A receiver that refuses a credential often quotes only the token, without
    the ``Bearer`` or ``Basic`` in front; for Basic, the user and password too.
    """
    variants: list[str] = []
    for value in (secret_headers or {}).values():
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if not token:
            continue
        variants.append(token)
        if scheme.lower() == "basic":
            variants += _basic_parts(token)
    return tuple(variants)


def _basic_parts(token: str) -> list[str]:
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return []
    user, _, password = decoded.partition(":")
    return [decoded, password] if password else [decoded]
