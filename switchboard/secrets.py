"""Encryption of channel secrets at rest and on notify.config (Fernet).

Secrets are a JSON object per channel, encrypted as one Fernet token with the
current key. Older keys listed in ``SWITCHBOARD_PREVIOUS_SECRET_KEYS`` still
decrypt, so a key can be rotated without downtime: add the new key as current,
keep the old one as previous, re-encrypt, then drop the old one.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from switchboard.settings import Settings


class SecretsError(Exception):
    """Raised when stored secrets cannot be decrypted with any configured key."""


class SecretBox:
    """Encrypts and decrypts a channel's secrets with the configured keys."""

    def __init__(
        self, current_key: str, previous_keys: list[str] | None = None
    ) -> None:
        """Use ``current_key`` to encrypt and it or any previous key to decrypt."""
        try:
            keys = [Fernet(current_key)] + [Fernet(k) for k in previous_keys or []]
        except ValueError as error:
            raise SecretsError(
                "secret keys must be 32 url-safe base64-encoded bytes "
                "(generate one with `switchboard secrets generate-key`)"
            ) from error
        self._fernet = MultiFernet(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box for the keys in settings."""
        previous = [
            key.strip()
            for key in settings.previous_secret_keys.get_secret_value().split(",")
            if key.strip()
        ]
        return cls(settings.secret_key.get_secret_value(), previous)

    def encrypt(self, secrets: dict[str, Any]) -> str:
        """Encrypt a secrets object into a token safe to store and publish."""
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        """Decrypt a token produced by :meth:`encrypt` with any configured key."""
        try:
            plain = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise SecretsError(
                "stored secrets do not decrypt with any configured key"
            ) from None
        try:
            secrets = json.loads(plain)
        except ValueError:
            raise SecretsError("stored secrets decrypt to something not JSON") from None
        if not isinstance(secrets, dict):
            raise SecretsError("stored secrets decrypt to something not an object")
        return secrets

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the current key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretsError(
                "stored secrets do not decrypt with any configured key"
            ) from None

    @staticmethod
    def generate_key() -> str:
        """A new random key."""
        return Fernet.generate_key().decode()
