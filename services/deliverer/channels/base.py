"""What every channel package provides: typed config, typed secrets and a Sender.

Each channel type is a subpackage ``services.deliverer.channels.<type>`` with
``config.py`` defining ``Config`` (non-secret settings) and ``Secrets``
(write-only values, encrypted at rest), and ``sender.py`` defining ``Sender``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

from services.deliverer.outcome import Outcome
from switchboard.settings import Settings

# Browsers and most servers refuse longer URLs, and the bound keeps a channel far
# below Kafka's message size.
MAX_URL_LENGTH = 2048


def _within_url_length(url: AnyHttpUrl) -> AnyHttpUrl:
    # Checked on the normalised form (a trailing slash added, an international
    # host in punycode), which is what is stored and returned.
    if len(str(url)) > MAX_URL_LENGTH:
        raise ValueError(f"URL should have at most {MAX_URL_LENGTH} characters")
    return url


TargetUrl = Annotated[AnyHttpUrl, AfterValidator(_within_url_length)]
"""An http or https target URL of bounded length."""

# One DNS label: letters, digits, hyphens inside, and underscores, which some
# internal names carry; 63 characters at most.
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _valid_host(host: str) -> str:
    # An IP address (an IPv6 one possibly in brackets) or a DNS name, so a
    # typo is refused when the channel is saved instead of failing every
    # attempt until the job is dead.
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
        return host
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    try:
        # An international name is checked in the form DNS sees it.
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    if ascii_name and all(_DNS_LABEL.match(x) for x in ascii_name.split(".")):
        return host
    raise ValueError(
        "should be a host name (letters, digits, hyphens and dots) or an IP address"
    )


TargetHost = Annotated[
    str, Field(min_length=1, max_length=253), AfterValidator(_valid_host)
]
"""A host name or IP address to send to (SMTP, SNMP and MQTT)."""


class StrictModel(BaseModel):
    """A model that rejects unknown fields and never coerces types silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ChannelConfigBase(StrictModel):
    """Fields every channel's configuration has."""

    timeout_s: float = Field(
        10.0, gt=0, le=60, description="Deadline of one attempt, connect to last byte."
    )

    def secret_problems(self, secrets: Any) -> list[tuple[str, str]]:
        """(field, problem) for each secret this configuration needs and lacks.

        Channels whose settings decide which secrets they need (an SMTP user
        needs a password, SNMPv3 needs its keys) override this, so that a
        channel every job of which would fail is refused when it is saved.
        """
        return []


class ChannelSecretsBase(StrictModel):
    """Base of every channel's secrets; fields here are never returned or logged."""


@dataclass(frozen=True)
class ResolvedChannel:
    """A channel as a sender sees it: validated config and decrypted secrets."""

    id: str
    tenant_id: str
    name: str
    channel_type: str
    enabled: bool
    config: Any
    secrets: Any


class Sender(Protocol):
    """Delivers one command to one channel and reports the outcome.

    Implementations keep their clients (HTTP pools, SMTP and MQTT connections)
    across calls, never retry or sleep, never log failures, and map every
    third-party exception to an :class:`Outcome` at one boundary.
    """

    def __init__(self, settings: Settings) -> None:
        """Build the sender once per deliverer process."""
        ...

    async def send(self, command: dict[str, Any], channel: ResolvedChannel) -> Outcome:
        """Attempt delivery of a decoded DeliveryCommand to ``channel``."""
        ...

    async def close(self) -> None:
        """Release connections and clients."""
        ...
