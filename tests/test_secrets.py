"""Stored channel secrets that do not decode are one specific error."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from switchboard.secrets import SecretBox, SecretsError


@pytest.mark.parametrize("plain", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_token_that_decrypts_to_no_object_is_a_secrets_error(plain: bytes) -> None:
    key = Fernet.generate_key()
    box = SecretBox(key.decode())

    with pytest.raises(SecretsError):
        box.decrypt(Fernet(key).encrypt(plain).decode())
