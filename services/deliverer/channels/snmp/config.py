"""Configuration of the SNMP notification channel (v2c community or v3 USM).

Alert fields travel as the objects of SWITCHBOARD-MIB (``mibs/``) under the
enterprise OID. A channel may add extra varbinds, each with a declared SNMP
type; a value that does not fit its type, or an OID that would shadow one of
the standard or alert objects, is refused when the channel is saved.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.deliverer import templates
from services.deliverer.channels.base import (
    ChannelConfigBase,
    ChannelSecretsBase,
    StrictModel,
    TargetHost,
)
from services.deliverer.channels.snmp.varbinds import (
    DEFAULT_ENTERPRISE_OID,
    SNMP_TYPES,
    VarbindError,
    check_oid,
    is_template,
    reserved_reason,
    typed_value,
)

__all__ = ["DEFAULT_ENTERPRISE_OID", "Config", "ExtraVarbind", "Secrets"]

_ENGINE_ID = re.compile(r"^(0x)?([0-9a-fA-F]{2}){5,32}$")

# A notification has to fit one UDP datagram; this many extras leave room.
MAX_EXTRA_VARBINDS = 32


class ExtraVarbind(StrictModel):
    """One more varbind: an OID, its SNMP type and a value (text or template)."""

    oid: str = Field(max_length=400)
    type: Literal[SNMP_TYPES] = Field(description="SNMP type of the value.")  # type: ignore[valid-type]
    value: str = Field(
        max_length=1000,
        description="The value as text, or a Jinja2 template rendering it.",
    )

    @field_validator("oid")
    @classmethod
    def _check_oid(cls, value: str) -> str:
        return check_oid(value)

    @model_validator(mode="after")
    def _check_value(self) -> ExtraVarbind:
        if is_template(self.value):
            templates.check(self.value)
            return self
        try:
            typed_value(self.type, self.value)
        except VarbindError as error:
            raise ValueError(str(error)) from None
        return self


class Config(ChannelConfigBase):
    """Target, SNMP version and security, enterprise OID and extra varbinds."""

    host: TargetHost
    port: int = Field(162, ge=1, le=65535)
    version: Literal["v2c", "v3"] = "v2c"
    notification: Literal["trap", "inform"] = Field(
        "trap", description="trap (unacknowledged) or inform (acknowledged)."
    )
    enterprise_oid: str = Field(
        DEFAULT_ENTERPRISE_OID,
        max_length=200,
        description="Root of SWITCHBOARD-MIB; the placeholder or your own PEN.",
    )
    username: str | None = Field(None, max_length=32)
    auth_protocol: (
        Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5"] | None
    ) = None
    priv_protocol: (
        Literal["AES", "AES192", "AES256", "AES192C", "AES256C", "DES"] | None
    ) = Field(
        None,
        description="AES192/AES256 extend keys as net-snmp does, the C variants "
        "as Cisco does.",
    )
    engine_id: str | None = Field(
        None,
        description=(
            "SNMPv3 engine id (hex) this sender uses for traps; receivers need it "
            "in their user entry. Default: derived from the channel id, stable."
        ),
    )
    extra_varbinds: list[ExtraVarbind] = Field(
        default_factory=list, max_length=MAX_EXTRA_VARBINDS
    )

    @field_validator("enterprise_oid")
    @classmethod
    def _check_enterprise(cls, value: str) -> str:
        return check_oid(value)

    @field_validator("engine_id")
    @classmethod
    def _check_engine_id(cls, value: str | None) -> str | None:
        if value is not None and not _ENGINE_ID.match(value):
            raise ValueError("engine_id must be 5 to 32 bytes in hex")
        return value.removeprefix("0x").upper() if value else value

    @model_validator(mode="after")
    def _check_v3(self) -> Config:
        if self.version == "v3" and not self.username:
            raise ValueError("SNMPv3 needs a username")
        if self.priv_protocol and not self.auth_protocol:
            raise ValueError("privacy needs authentication (set auth_protocol)")
        return self

    @model_validator(mode="after")
    def _check_extra_oids(self) -> Config:
        seen: set[str] = set()
        for extra in self.extra_varbinds:
            reason = reserved_reason(extra.oid, self.enterprise_oid)
            if reason:
                raise ValueError(f"extra varbind {extra.oid}: {reason}")
            if extra.oid in seen:
                raise ValueError(f"extra varbind {extra.oid} is given twice")
            seen.add(extra.oid)
        return self

    def secret_problems(self, secrets: Secrets) -> list[tuple[str, str]]:
        """(field, problem) for each secret this configuration needs and lacks."""
        needed = (
            [("community", "SNMP v2c")]
            if self.version == "v2c"
            else [
                (name, f"{protocol} {kind}")
                for name, protocol, kind in (
                    ("auth_key", self.auth_protocol, "authentication"),
                    ("priv_key", self.priv_protocol, "privacy"),
                )
                if protocol
            ]
        )
        return [
            (f"secrets.{name}", f"{what} needs {name}")
            for name, what in needed
            if not getattr(secrets, name)
        ]


class Secrets(ChannelSecretsBase):
    """Community string (v2c) or USM keys (v3)."""

    community: str | None = Field(None, min_length=1, max_length=255)
    auth_key: str | None = Field(None, min_length=8, max_length=255)
    priv_key: str | None = Field(None, min_length=8, max_length=255)
