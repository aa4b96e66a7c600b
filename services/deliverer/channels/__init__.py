"""Registry of channel types: each one's typed Config and Secrets models.

Senders are imported only by deliverers that serve their type, from
``services.deliverer.channels.<type>.sender`` (class ``Sender``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from switchboard.domain import ChannelType


@dataclass(frozen=True)
class ChannelSpec:
    """A channel type's models."""

    channel_type: ChannelType
    config_model: type[BaseModel]
    secrets_model: type[BaseModel]


def _load_spec(channel_type: ChannelType) -> ChannelSpec:
    module = importlib.import_module(
        f"services.deliverer.channels.{channel_type}.config"
    )
    return ChannelSpec(channel_type, module.Config, module.Secrets)


CHANNEL_SPECS: dict[ChannelType, ChannelSpec] = {
    channel_type: _load_spec(channel_type) for channel_type in ChannelType
}


def sender_class(channel_type: str) -> Any:
    """The ``Sender`` class of a channel type."""
    module = importlib.import_module(
        f"services.deliverer.channels.{channel_type}.sender"
    )
    return module.Sender
