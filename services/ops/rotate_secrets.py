"""Re-encrypt every stored channel secret under the current key, without downtime.

Rotation runs while everything keeps working: every process is first given the
new key as ``SWITCHBOARD_SECRET_KEY`` and the old one in
``SWITCHBOARD_PREVIOUS_SECRET_KEYS``, so it reads tokens under either key. Then
this walks the channels one row at a time, each in its own short transaction
that locks the row, stores the re-encrypted token and writes the channel's
outbox row, exactly as an API update would. The relay publishes the new token
to ``notify.config`` and running routers and deliverers pick it up from there.

A row already under the current key is left alone, so an interrupted rotation
is finished by running it again. Once it reports nothing left under old keys,
the old key can be removed from ``SWITCHBOARD_PREVIOUS_SECRET_KEYS``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import psycopg
from cryptography.fernet import Fernet, InvalidToken
from psycopg.rows import dict_row, tuple_row

from services.api.outbox import record_channel
from services.ops.errors import OpsError
from switchboard.codec import Codec
from switchboard.secrets import SecretBox, SecretsError
from switchboard.settings import Settings

log = logging.getLogger(__name__)

BATCH = 200


@dataclass
class RotationReport:
    """How many channels were re-encrypted, already current, or unreadable."""

    rotated: int = 0
    current: int = 0
    unreadable: list[str] = field(default_factory=list)
    dry_run: bool = False


class SecretRotator:
    """Re-encrypts channel secrets under the current key, row by row."""

    def __init__(
        self, settings: Settings, conn: psycopg.Connection, codec: Codec
    ) -> None:
        """Use the keys in ``settings`` and ``conn`` (autocommit) for the rows."""
        try:
            self._box = SecretBox.from_settings(settings)
        except SecretsError as error:
            raise OpsError(str(error)) from None
        self._current = Fernet(settings.secret_key.get_secret_value())
        self._conn = conn
        self._codec = codec

    def run(
        self, tenant_id: uuid.UUID | None = None, dry_run: bool = False
    ) -> RotationReport:
        """Rotate every channel with secrets (or only one tenant's)."""
        report = RotationReport(dry_run=dry_run)
        last_id = uuid.UUID(int=0)
        while True:
            ids = self._next_ids(last_id, tenant_id)
            if not ids:
                return report
            for channel_id in ids:
                self._rotate_one(channel_id, report, dry_run)
            last_id = ids[-1]

    def _next_ids(
        self, after: uuid.UUID, tenant_id: uuid.UUID | None
    ) -> list[uuid.UUID]:
        tenant_clause = " AND tenant_id = %s" if tenant_id else ""
        params = (after, tenant_id, BATCH) if tenant_id else (after, BATCH)
        with self._conn.cursor(row_factory=tuple_row) as cursor:
            rows = cursor.execute(
                "SELECT id FROM notification_channels"
                " WHERE secrets_encrypted IS NOT NULL AND id > %s"
                f"{tenant_clause} ORDER BY id LIMIT %s",
                params,
            ).fetchall()
        return [row[0] for row in rows]

    def _rotate_one(
        self, channel_id: uuid.UUID, report: RotationReport, dry_run: bool
    ) -> None:
        # One short transaction per row: an API write to the same channel waits
        # for at most this one row, and its own outbox row follows ours.
        with self._conn.transaction(), self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT * FROM notification_channels WHERE id = %s FOR UPDATE",
                (channel_id,),
            ).fetchone()
            if row is None or row["secrets_encrypted"] is None:
                return
            if self._is_current(row["secrets_encrypted"]):
                report.current += 1
                return
            try:
                token = self._box.rotate(row["secrets_encrypted"])
            except SecretsError:
                # Reported once, in the summary the caller prints.
                report.unreadable.append(str(channel_id))
                return
            report.rotated += 1
            if not dry_run:
                self._store(cur, row, token)

    def _store(self, cur: psycopg.Cursor, row: dict, token: str) -> None:
        updated = cur.execute(
            "UPDATE notification_channels"
            " SET secrets_encrypted = %s, updated_at = now()"
            " WHERE id = %s RETURNING *",
            (token, row["id"]),
        ).fetchone()
        record_channel(self._conn, self._codec, updated)
        log.info(
            "channel secrets re-encrypted",
            extra={"tenant": str(row["tenant_id"]), "channel": str(row["id"])},
        )

    def _is_current(self, token: str) -> bool:
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True
