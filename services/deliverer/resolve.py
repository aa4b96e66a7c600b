"""Turning a command's channel id into a ResolvedChannel a sender can use.

The channel comes from the notify.config cache; its configuration is validated
with the type's ``Config`` model and its secrets are decrypted in memory only.
A parsed channel is reused until the cache holds a newer record for it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.deliverer.channels import CHANNEL_SPECS
from services.deliverer.channels.base import ResolvedChannel
from services.deliverer.outcome import Outcome, OutcomeKind, Reason
from services.deliverer.redact import secret_values
from switchboard.config_cache import ChannelRecord, ConfigCache
from switchboard.domain import ChannelType
from switchboard.secrets import SecretBox, SecretsError

# A command can reach the deliverer a moment before the cache has read the
# ConfigEvent of a channel created just before it; wait that long before
# treating an unknown channel as deleted.
UNKNOWN_CHANNEL_GRACE_S = 3.0
UNKNOWN_CHANNEL_RECHECK_S = 0.1


@dataclass(frozen=True)
class Resolution:
    """A usable channel and the secret strings to redact, or why there is none."""

    channel: ResolvedChannel | None
    secrets: tuple[str, ...]
    failure: Outcome | None = None


class ChannelResolver:
    """Resolves channels from the config cache, with parsed results memoised."""

    def __init__(
        self,
        cache: ConfigCache,
        box: SecretBox,
        grace_s: float = UNKNOWN_CHANNEL_GRACE_S,
    ) -> None:
        """Resolve from ``cache``, decrypting with ``box``."""
        self._cache = cache
        self._box = box
        self._grace_s = grace_s
        self._parsed: dict[str, tuple[ChannelRecord, Resolution]] = {}

    async def resolve(self, command: dict[str, Any]) -> Resolution:
        """The channel of ``command``, or a failure: gone, disabled, invalid."""
        record = await self._record(command["channel_id"])
        if record is None or record.tenant_id != command["tenant_id"]:
            return _failed(Reason.CHANNEL_GONE, "channel deleted or unknown")
        if not record.enabled:
            return _failed(Reason.CHANNEL_DISABLED, "channel disabled")
        if record.channel_type != str(command["channel_type"]):
            return _failed(
                Reason.WRONG_CHANNEL_TYPE,
                f"channel is of type {record.channel_type}, "
                f"command is for {command['channel_type']}",
            )
        memo = self._parsed.get(record.id)
        if memo is not None and memo[0] is record:
            return memo[1]
        resolution = self._parse(record)
        if (
            resolution.failure is None
            or resolution.failure.kind is OutcomeKind.PERMANENT
        ):
            self._parsed[record.id] = (record, resolution)
        return resolution

    async def _record(self, channel_id: str) -> ChannelRecord | None:
        record = self._cache.channel(channel_id)
        deadline = time.monotonic() + self._grace_s
        while record is None and time.monotonic() < deadline:
            await asyncio.sleep(UNKNOWN_CHANNEL_RECHECK_S)
            record = self._cache.channel(channel_id)
        return record

    def _parse(self, record: ChannelRecord) -> Resolution:
        spec = CHANNEL_SPECS[ChannelType(record.channel_type)]
        try:
            secrets_raw = (
                self._box.decrypt(record.secrets_encrypted)
                if record.secrets_encrypted
                else {}
            )
        except SecretsError as error:
            # The key this process was given does not match the stored secrets:
            # an operator's rollout (secrets rotated before every process has
            # the new key), not the customer's configuration. Retried, so the
            # jobs go out once the key is right instead of dying meanwhile.
            return Resolution(
                None, (), Outcome.retryable(Reason.SECRETS_UNREADABLE, str(error))
            )
        redactions = secret_values(secrets_raw)
        try:
            config = spec.config_model.model_validate_json(record.config_json)
            secrets = spec.secrets_model.model_validate(secrets_raw)
        except ValidationError as error:
            # Pydantic quotes input values; secrets must not reach the job log.
            fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors())
            return _failed(
                Reason.INVALID_CONFIG,
                f"invalid channel configuration: {fields}",
                redactions,
            )
        channel = ResolvedChannel(
            id=record.id,
            tenant_id=record.tenant_id,
            name=record.name,
            channel_type=record.channel_type,
            enabled=record.enabled,
            config=config,
            secrets=secrets,
        )
        return Resolution(channel, redactions)


def _failed(reason: Reason, error: str, secrets: tuple[str, ...] = ()) -> Resolution:
    return Resolution(None, secrets, Outcome.permanent(reason, error))
