"""``switchboard secrets rotate``: stored secrets re-encrypted under the new key."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from services.api.tenants import create_tenant
from services.ops.rotate_secrets import SecretRotator
from switchboard.config_cache import channel_key
from switchboard.secrets import SecretBox, SecretsError
from switchboard.settings import Settings

SWITCHBOARD = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "switchboard"
SECRETS = {"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def _channel(conn, tenant_id: uuid.UUID, token: str) -> uuid.UUID:
    channel_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO notification_channels"
        " (id, tenant_id, name, channel_type, config, secrets_encrypted)"
        " VALUES (%s, %s, 'rotated', 'webhook', %s, %s)",
        (channel_id, tenant_id, Jsonb({"url": "https://example.com/hook"}), token),
    )
    return channel_id


def _token(conn, channel_id: uuid.UUID) -> str:
    row = conn.execute(
        "SELECT secrets_encrypted FROM notification_channels WHERE id = %s",
        (channel_id,),
    ).fetchone()
    return row["secrets_encrypted"]


def test_rotation_re_encrypts_and_the_old_key_alone_no_longer_decrypts(
    settings, codec, dict_conn, unique
):
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    old_box, new_only = SecretBox(old_key), SecretBox(new_key)
    tenant_id, _key = create_tenant(dict_conn, f"ops-rotate-{unique}")
    channels = [_channel(dict_conn, tenant_id, old_box.encrypt(SECRETS)) for _ in "ab"]
    rotating = Settings(secret_key=new_key, previous_secret_keys=old_key)

    dry = SecretRotator(rotating, dict_conn, codec).run(tenant_id, dry_run=True)
    untouched = [_token(dict_conn, c) for c in channels]
    report = SecretRotator(rotating, dict_conn, codec).run(tenant_id)
    again = SecretRotator(rotating, dict_conn, codec).run(tenant_id)

    assert (dry.rotated, dry.current) == (2, 0)
    assert [old_box.decrypt(t) for t in untouched] == [SECRETS, SECRETS]
    assert (report.rotated, report.current, report.unreadable) == (2, 0, [])
    assert (again.rotated, again.current) == (0, 2)
    for channel_id in channels:
        token = _token(dict_conn, channel_id)
        assert new_only.decrypt(token) == SECRETS
        with pytest.raises(SecretsError):
            old_box.decrypt(token)
        published = _outbox_tokens(dict_conn, codec, channel_id)
        assert published == [token]


def test_a_secret_no_key_opens_is_reported_and_left_alone(
    settings, codec, dict_conn, unique
):
    stranger = SecretBox(SecretBox.generate_key()).encrypt(SECRETS)
    tenant_id, _key = create_tenant(dict_conn, f"ops-rotate-lost-{unique}")
    channel_id = _channel(dict_conn, tenant_id, stranger)
    rotating = Settings(secret_key=SecretBox.generate_key())

    report = SecretRotator(rotating, dict_conn, codec).run(tenant_id)

    assert (report.rotated, report.unreadable) == (0, [str(channel_id)])
    assert _token(dict_conn, channel_id) == stranger


def _outbox_tokens(conn, codec, channel_id: uuid.UUID) -> list[str]:
    rows = conn.execute(
        "SELECT payload FROM config_outbox WHERE message_key = %s ORDER BY id",
        (channel_key(str(channel_id)),),
    ).fetchall()
    events = [codec.decode("ConfigEvent", row["payload"]) for row in rows]
    return [event["channel"]["secrets_encrypted"] for event in events]


def test_the_command_rotates_with_the_keys_from_the_environment(
    settings, dict_conn, unique
):
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    tenant_id, _key = create_tenant(dict_conn, f"ops-rotate-cli-{unique}")
    channel_id = _channel(dict_conn, tenant_id, SecretBox(old_key).encrypt(SECRETS))
    env = {
        **os.environ,
        "SWITCHBOARD_SECRET_KEY": new_key,
        "SWITCHBOARD_PREVIOUS_SECRET_KEYS": f"{SecretBox.generate_key()},{old_key}",
    }
    command = [str(SWITCHBOARD), "secrets", "rotate", "--tenant", str(tenant_id)]

    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "re-encrypted 1 channel(s)" in result.stdout
    assert SecretBox(new_key).decrypt(_token(dict_conn, channel_id)) == SECRETS
